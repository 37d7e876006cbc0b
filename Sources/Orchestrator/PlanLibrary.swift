import Agents
import Dispatch
import Foundation
import Runtime
import Store

/// A plan as a job uses it: validated, its snapshot text, where it came from.
struct LoadedPlan: Sendable {
    let plan: Plan
    /// `plan.json`, encoded once: stored in each job's row.
    let snapshot: String
}

/// Loads and validates plan files off the loop, caching them by path, size and modification time
/// (or by text, for inline plans), so a burst of submissions of one plan parses it once.
///
/// A plan file that loaded is also watched (inotify): until it changes, a submission of it is
/// answered from the loop's own cache without leaving the loop; any change drops that entry.
/// Loading runs on a Dispatch queue whose cache is behind that queue; `watched` is loop-only.
final class PlanLibrary: @unchecked Sendable {
    private let queue = DispatchQueue(label: "agentd.plans")
    private let loop: EventLoop?
    private var watched: [String: (plan: LoadedPlan, watch: FileWatch)] = [:]
    /// Submissions waiting for a load of the same file that is under way. Loop-only.
    private var waiting: [String: [UnsafeContinuation<Result<LoadedPlan, PlanError>?, Never>]] = [:]
    private var byPath: [String: (stamp: String, plan: LoadedPlan)] = [:]
    private var byText: [String: LoadedPlan] = [:]
    private let limit = 256

    /// With a loop, plan files that loaded are watched and served from memory until they change.
    init(loop: EventLoop? = nil) {
        self.loop = loop
    }

    /// Loads a plan file. `path` must be absolute (clients resolve it against their directory).
    /// Called on the loop when the library has one.
    func load(path: String) async throws(PlanError) -> LoadedPlan {
        guard let loop else { return try await loadOffLoop(path) }
        if let hit = watched[path] { return hit.plan }
        if waiting[path] != nil {
            // A load of this file is under way: share its result. The check is repeated inside the
            // continuation's body: the task may reach it only after that load has finished.
            let shared: Result<LoadedPlan, PlanError>? = await withUnsafeContinuation { c in
                if waiting[path] != nil {
                    waiting[path]!.append(c)
                } else {
                    c.resume(returning: nil)
                }
            }
            guard let shared else { return try await load(path: path) }
            return try shared.get()
        }
        waiting[path] = []
        // Watch before reading, so a change during the read is not missed.
        var changed = false
        let watch =
            watched.count < limit
            ? try? FileWatch(loop: loop, path: path) { [weak self] in
                changed = true
                self?.forget(path)
            }
            : nil
        let result: Result<LoadedPlan, PlanError>
        do {
            result = .success(try await loadOffLoop(path))
        } catch {
            result = .failure(error)
        }
        if let watch {
            if case let .success(plan) = result, !changed, watched[path] == nil {
                watched[path] = (plan, watch)
            } else {
                watch.close()
            }
        }
        for waiter in waiting.removeValue(forKey: path) ?? [] { waiter.resume(returning: result) }
        return try result.get()
    }

    private func loadOffLoop(_ path: String) async throws(PlanError) -> LoadedPlan {
        let result: Result<LoadedPlan, PlanError> = await withUnsafeContinuation { continuation in
            queue.async { continuation.resume(returning: Result { () throws(PlanError) in try self.loadNow(path: path) }) }
        }
        return try result.get()
    }

    private func forget(_ path: String) {
        watched.removeValue(forKey: path)?.watch.close()
    }

    /// Stops every file watch. Loop thread.
    func close() {
        for (_, entry) in watched { entry.watch.close() }
        watched = [:]
    }

    /// Parses an inline plan (YAML or JSON text); relative paths in it resolve against `baseDirectory`.
    /// `readsFiles` false refuses `script_file` and `ca_file` (a plan from someone other than the owner).
    func parse(text: String, name: String, baseDirectory: String?, readsFiles: Bool = true) async throws(PlanError) -> LoadedPlan {
        let result: Result<LoadedPlan, PlanError> = await withUnsafeContinuation { continuation in
            queue.async {
                continuation.resume(
                    returning: Result { () throws(PlanError) in
                        let key = (readsFiles ? "" : "\u{1}") + (baseDirectory ?? "") + "\u{0}" + text
                        if let hit = self.byText[key] { return hit }
                        let plan = try PlanLoader.parse(yaml: text, file: name, baseDirectory: baseDirectory, readsFiles: readsFiles)
                        let loaded = Self.prepare(plan, directory: baseDirectory)
                        if self.byText.count >= self.limit { self.byText.removeAll() }
                        self.byText[key] = loaded
                        return loaded
                    })
            }
        }
        return try result.get()
    }

    private func loadNow(path: String) throws(PlanError) -> LoadedPlan {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw PlanError(
                file: path, line: nil, column: nil, field: "", message: "cannot read plan file: \(String(cString: strerror(errno)))")
        }
        let stamp = "\(st.st_size):\(st.st_mtim.tv_sec):\(st.st_mtim.tv_nsec)"
        if let hit = byPath[path], hit.stamp == stamp { return hit.plan }
        let plan = try PlanLoader.load(path: path)
        let loaded = Self.prepare(plan, directory: (path as NSString).deletingLastPathComponent)
        if byPath.count >= limit { byPath.removeAll() }
        byPath[path] = (stamp, loaded)
        return loaded
    }

    /// Pins what depends on where the plan file was: a `command` model with no `cwd` runs in the
    /// plan's directory, so the snapshot stays valid wherever the daemon runs it.
    static func prepare(_ plan: Plan, directory: String?) -> LoadedPlan {
        var plan = plan
        if let directory {
            for (name, model) in plan.models {
                if case var .command(spec) = model.backend {
                    if spec.cwd == nil {
                        spec.cwd = directory
                    } else if let cwd = spec.cwd, !cwd.hasPrefix("/") {
                        spec.cwd = directory + "/" + cwd
                    }
                    plan.models[name] = ModelSpec(backend: .command(spec))
                }
            }
        }
        return LoadedPlan(plan: plan, snapshot: plan.json.encoded)
    }

    /// Rebuilds a plan from a job's stored snapshot (recovery).
    static func fromSnapshot(_ text: String) throws(PlanError) -> Plan {
        try PlanLoader.parse(yaml: text, file: "<stored plan>", baseDirectory: nil)
    }
}
