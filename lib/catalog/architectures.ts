/**
 * The architectures the installer image is built for, and those its index carries an image for that refuses
 * (the installer starts there, labels its node failed and changes nothing).
 */
export const BUILT_ARCHITECTURES = ['amd64', 'arm64'] as const;
export const UNBUILT_ARCHITECTURES = ['s390x', 'ppc64le'] as const;
export type ImageArchitecture = (typeof BUILT_ARCHITECTURES)[number] | (typeof UNBUILT_ARCHITECTURES)[number];
