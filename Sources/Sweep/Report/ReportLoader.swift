import Foundation

extension ReportData {
    /// Reads a run's store (finished or still running) into report data: every train shard is a
    /// model (its pretraining loss once done), every done prune shard contributes its curve.
    public static func load(runDirectory: URL) throws -> ReportData {
        let run = RunDirectory(runDirectory)
        let store = try run.openStore(readOnly: true)
        let artifacts = run.artifacts
        return try store.read { tx in
            let spec = try tx.sweepSpec()
            var models: [ReportModel] = []
            var circuits: [ReportCircuit] = []
            var shards: [ReportShard] = []
            for row in try tx.shardRecords() {
                let id = row.id, kind = row.kind, state = row.state
                shards.append(ReportShard(id: id, kind: kind, state: state, attempts: row.attempts,
                                          error: state == ShardState.done.rawValue ? nil : row.lastError))
                guard let point = try ShardParams.decode(row.params).point else { continue }
                let model = ReportModel(point: point, embedDensity: spec.model.embedDensity)
                switch kind {
                case ShardKindName.train:
                    var trained = model
                    if state == ShardState.done.rawValue, let summary = decodeSummary(row.summary) {
                        trained.pretrainLoss = summary["pretrain_loss"]
                        trained.nonzeroWeights = summary["nonzero_weights"].map { Int($0) }
                    }
                    models.append(trained)
                case ShardKindName.prune where state == ShardState.done.rawValue:
                    // One unreadable curve must not hide the rest of the run: it is shown as that shard's error.
                    do {
                        guard let hash = try tx.outputs(ofShard: id)["curve"] else {
                            throw SweepError("shard \(id): done but has no curve output")
                        }
                        let file = artifacts.appendingPathComponent(hash)
                        circuits += try CurveFile.circuits(in: file, shard: id, modelID: model.identifier)
                    } catch {
                        shards[shards.count - 1].error = "\(error)"
                    }
                default:
                    continue
                }
            }
            return ReportData(sweepName: spec.name, models: models, circuits: circuits, shards: shards,
                              headlineTarget: spec.prune.headlineTarget)
        }
    }

    private static func decodeSummary(_ text: String?) -> [String: Double]? {
        guard let text else { return nil }
        return try? JSONDecoder().decode([String: Double].self, from: Data(text.utf8))
    }
}

extension ReportModel {
    init(point: ModelPoint, embedDensity: Double?) {
        self.init(density: point.density, embedDensity: embedDensity ?? min(1, 4 * point.density),
                  dModel: point.dModel, afrac: point.afrac, seed: point.seed, randomInit: point.isRandomInit)
    }
}

/// A prune shard's `curve` output: the frontier document of one (model, task), one circuit
/// document per target loss (SPEC 4). Only the fields the report needs are read; `status`,
/// `full_loss` and `necessity_loss` are optional, so curves written before the pruner recorded
/// them still load.
enum CurveFile {
    private struct Point: Decodable {
        var target: Double
        var reachable: Bool
        var status: String?
        var reached_loss: Double?
        var node_count: Int?
        var edge_count: Int?
        var full_loss: Double?
        var necessity_loss: Double?
    }

    private struct Document: Decodable {
        var task: String
        var full_loss: Double?
        var points: [Point]
    }

    static func circuits(in file: URL, shard: String, modelID: String) throws -> [ReportCircuit] {
        let data: Data
        do { data = try Data(contentsOf: file) } catch {
            throw SweepError("shard \(shard): cannot read its curve \(file.path): \(error.localizedDescription)")
        }
        let document: Document
        let rawPoints: [Any]
        do {
            document = try JSONDecoder().decode(Document.self, from: data)
            rawPoints = ((try JSONSerialization.jsonObject(with: data) as? [String: Any])?["points"] as? [Any]) ?? []
        } catch {
            throw SweepError("shard \(shard): its curve \(file.path) is not a frontier document: \(error)")
        }
        return try document.points.enumerated().map { i, p in
            let status: ReportCircuit.Status
            if let text = p.status {
                guard let value = ReportCircuit.Status(rawValue: text) else {
                    throw SweepError("shard \(shard): its curve \(file.path) has status '\(text)' at target \(p.target)"
                                     + " (expected reachable, unreachable or collapsed)")
                }
                status = value
            } else {
                status = p.reachable ? .reachable : .unreachable
            }
            let json = i < rawPoints.count && status != .unreachable
                ? try? JSONSerialization.data(withJSONObject: rawPoints[i], options: [.prettyPrinted, .sortedKeys]) : nil
            return ReportCircuit(modelID: modelID, task: document.task, target: p.target, reachable: status == .reachable,
                                 status: status, reachedLoss: p.reached_loss, nodes: p.node_count, edges: p.edge_count,
                                 fullLoss: p.full_loss ?? document.full_loss, necessityLoss: p.necessity_loss,
                                 circuitJSON: json)
        }
    }
}
