/**
 * The only error the TOML patchers throw: bad input they refuse to edit.
 *
 * The installer prints the message as is on a node's log, so it is kept to one line that says what was
 * wrong and what would be accepted.
 */
export class ConfigPatchError extends Error {
  constructor(message: string) {
    // Parser messages and file contents may carry line breaks; a log line must not.
    super(message.replace(/\s*[\r\n]+\s*/g, ' ').trim());
    this.name = 'ConfigPatchError';
  }
}
