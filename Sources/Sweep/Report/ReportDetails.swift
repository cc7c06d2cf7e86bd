import Foundation

/// What the report shows beside the frontiers: each shard's duration and worker, each model's
/// training curve, each circuit's per-node analysis. Read from a run's store, finished or running.
public struct ReportDetails: Sendable {
    /// By shard id.
    public var shardTimes: [String: ShardTime] = [:]
    /// By model identifier (`ReportModel.identifier`).
    public var trainingCurves: [String: TrainingCurve] = [:]
    /// The `CircuitAnalysis` JSON of each prune shard, by `ReportDetails.circuitKey`.
    public var analyses: [String: Data] = [:]
    /// True while any shard is pending or leased.
    public var running = false
    /// When the details were read (seconds since 1970), for the duration of running shards.
    public var now = Date().timeIntervalSince1970
    /// Outputs that could not be read, one sentence each (the rest of the report still shows).
    public var problems: [String] = []

    public init() {}

    /// The file-name-safe key of a (model, task): `MODEL__TASK`, as the circuit files are named.
    public static func circuitKey(modelID: String, task: String) -> String { "\(modelID)__\(task)" }

    /// Seconds a shard's latest attempt took (so far, while it runs).
    public func seconds(ofShard id: String) -> Double? {
        guard let t = shardTimes[id] else { return nil }
        return (t.endedAt ?? now) - t.startedAt
    }

    public static func load(runDirectory: URL) throws -> ReportDetails {
        let run = RunDirectory(runDirectory)
        let store = try run.openStore(readOnly: true)
        let artifacts = run.artifacts
        return try store.read { tx in
            var details = ReportDetails()
            details.shardTimes = try tx.latestAttemptTimes()
            let spec = try tx.sweepSpec()
            for row in try tx.shardRecords() {
                let id = row.id, kind = row.kind, state = row.state
                if state == ShardState.pending.rawValue || state == ShardState.leased.rawValue { details.running = true }
                guard state == ShardState.done.rawValue, let params = try? ShardParams.decode(row.params),
                      let point = params.point else { continue }
                let modelID = ReportModel(point: point, embedDensity: spec.model.embedDensity).identifier
                let outputs = try tx.outputs(ofShard: id)
                switch kind {
                case ShardKindName.train:
                    // Runs from before training curves were recorded have none.
                    guard let hash = outputs["training_curve"] else { continue }
                    let file = artifacts.appendingPathComponent(hash)
                    do {
                        let text = try String(contentsOf: file, encoding: .utf8)
                        details.trainingCurves[modelID] = try TrainingCurve.parse(text, source: "shard \(id): training curve \(file.path)")
                    } catch {
                        details.problems.append("shard \(id): cannot read its training curve \(file.path): \(error)")
                    }
                case ShardKindName.prune:
                    guard let hash = outputs["analysis"], let task = params.task else { continue }
                    let file = artifacts.appendingPathComponent(hash)
                    do {
                        details.analyses[circuitKey(modelID: modelID, task: task)] = try Data(contentsOf: file)
                    } catch {
                        details.problems.append("shard \(id): cannot read its circuit analysis \(file.path): \(error.localizedDescription)")
                    }
                default:
                    continue
                }
            }
            return details
        }
    }
}
