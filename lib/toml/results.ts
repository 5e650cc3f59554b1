/** What every add/remove function returns. */
export interface PatchResult {
  /** The new file content. */
  readonly text: string;
  /** False when `text` is byte-identical to the input: nothing to write, nothing to restart. */
  readonly changed: boolean;
}

export interface RemovalResult extends PatchResult {
  /**
   * What is left is only what the installer itself writes when it creates the file (blank text for a
   * containerd config, the bare `{{ template "base" . }}` for a k3s template). If the installer created the
   * file, and only then, it deletes the file instead of writing `text`.
   */
  readonly deletable: boolean;
}
