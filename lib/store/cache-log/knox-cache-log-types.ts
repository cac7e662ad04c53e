/**
 * Reads the cache's invalidation log on a connection of its own (outside TypeORM's pool and
 * logger: no pool slot taken from requests, no log line per read, nothing counted as a request's
 * query). `open` connects and sets the starting point (what is in the log now is not wanted: the
 * cache starts empty); each `read` returns the messages appended since, in no particular order.
 */
export interface KnoxCacheLogReader {
  open(): Promise<void>;
  read(): Promise<string[]>;
  /** Deletes the rows every reader has had time to see; returns how many. */
  prune(retentionMs: number): Promise<number>;
  close(): Promise<void>;
}
