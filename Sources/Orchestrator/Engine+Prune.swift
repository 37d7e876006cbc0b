import Store

extension Engine {
    /// Removes whole finished jobs that `request` selects (see `PruneRequest`) through the store's
    /// writer, so the single-writer rule holds; with `dryRun`, only counts them. Jobs this engine still
    /// holds (a cancelled job whose runner is stopping) are kept. Loop thread.
    public func prune(_ request: PruneRequest, dryRun: Bool) async throws(EngineError) -> PruneResult {
        var request = request
        request.exclude.formUnion(activeJobIDs)
        if dryRun {
            do {
                return try await reader.read { [request] in try $0.pruneCandidates(request) }
            } catch {
                throw .storage(error.description)
            }
        }
        if let fault = writer.storageFault { throw .storageUnavailable(fault, refusing: "prunes") }
        let result: PruneResult
        do {
            result = try await writer.prune(request) { [self] removed in forgetPruned(removed) }
        } catch {
            if error.isStorageFault, let fault = writer.storageFault { throw .storageUnavailable(fault, refusing: "prunes") }
            throw .storage(error.description)
        }
        if result.jobs > 0 {
            logger.info(
                "pruned finished jobs",
                metadata: [
                    "prune.id": "\(result.pruneID ?? 0)", "jobs": "\(result.jobs)", "events": "\(result.events)",
                    "before": "\(request.before)", "statuses": "\(request.statuses.map(\.rawValue).joined(separator: ","))",
                ])
        }
        return result
    }
}
