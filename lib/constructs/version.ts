import { version } from '../../package.json';

/** This package's version: the default image tag and the app.kubernetes.io/version label. */
export const PACKAGE_VERSION: string = version;
