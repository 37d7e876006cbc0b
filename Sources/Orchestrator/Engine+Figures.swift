import Store

extension Engine {
    /// What the engine reports about itself; `daemon.status` shows it with the daemon's own figures
    /// (`DaemonStatus`). A snapshot taken on the loop; any thread may read it.
    public struct Figures: Sendable {
        /// False once draining for shutdown, and while a storage fault lasts.
        public var accepting: Bool
        public var uptimeMillis: Int64
        /// Jobs whose runner is active.
        public var running: Int
        /// Entries waiting in the scheduler's queue.
        public var queued: Int
        /// Open `job.watch` subscriptions.
        public var watchers: Int
        /// Jobs in the database per status (missing: none).
        public var jobs: [JobStatus: Int]
        /// The database file.
        public var storePath: String
        /// The writer's counters since start.
        public var store: StoreWriter.Stats
        /// The fault the store is degraded by, or nil.
        public var storageFault: StorageFault?
        /// Jobs the storage fault stopped, which resume when it ends.
        public var stoppedJobs: Int
    }
}
