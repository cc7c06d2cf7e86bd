import Foundation

/// `circuitry status`: the state of every shard, from the store, while the sweep runs or after.
public enum StatusReport {
    public struct Snapshot: Codable {
        public var sweep: String
        public var finished: Bool
        public var counts: StateCounts
        public var shards: [ShardStatus]
    }

    public static func snapshot(runDirectory: URL) throws -> Snapshot {
        let store = try Store(runDirectory: runDirectory, readOnly: true)
        return try store.read { tx in
            let counts = try tx.counts()
            return Snapshot(sweep: try tx.sweepSpec().name, finished: counts.finished, counts: counts,
                            shards: try tx.shards())
        }
    }

    public static func json(_ snapshot: Snapshot) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try! encoder.encode(snapshot), as: UTF8.self)
    }

    public static func table(_ snapshot: Snapshot) -> String {
        var lines = ["sweep \(snapshot.sweep): \(snapshot.counts.done) done, \(snapshot.counts.failed) failed, "
            + "\(snapshot.counts.leased) running, \(snapshot.counts.pending) pending"
            + (snapshot.finished ? " (finished)" : "")]
        let width = min(60, snapshot.shards.map(\.id.count).max() ?? 10)
        lines.append(pad("SHARD", width) + "  " + pad("KIND", 7) + "  " + pad("STATE", 7) + "  TRIES  PROGRESS / ERROR")
        for shard in snapshot.shards {
            var detail = ""
            if shard.state == .leased, let step = shard.step, let total = shard.totalSteps {
                detail = "step \(step)/\(total)" + (shard.loss.map { String(format: " loss %.4f", $0) } ?? "")
                    + (shard.worker.map { " on \($0)" } ?? "")
            } else if let error = shard.error {
                detail = error.count > 100 ? String(error.prefix(100)) + "…" : error
            }
            lines.append(pad(shard.id, width) + "  " + pad(shard.kind, 7) + "  " + pad(shard.state.rawValue, 7)
                         + "  " + pad("\(shard.attempts)/\(shard.maxAttempts)", 5) + "  " + detail)
        }
        return lines.joined(separator: "\n")
    }

    /// SPEC section 5 in brief: per model, pretraining loss and the geometric
    /// mean over tasks of circuit edges at the headline target.
    public static func frontierSummary(runDirectory: URL) throws -> String {
        let store = try Store(runDirectory: runDirectory, readOnly: true)
        let (spec, shards) = try store.read { tx in (try tx.sweepSpec(), try tx.shards()) }
        func summary(_ shard: ShardStatus) -> [String: Double] {
            guard let text = shard.summary, let data = text.data(using: .utf8),
                  let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [:] }
            return object.compactMapValues { ($0 as? NSNumber)?.doubleValue }
        }
        var lines = ["frontier" + (spec.simulate != nil ? " (simulated shards: numbers are stand-ins)" : "") + ":",
                     "  d_model  density  afrac  seed  pretrain_loss  geomean_edges  tasks_reached"]
        for point in spec.modelPoints.sorted(by: { ($0.dModel, -$0.density) < ($1.dModel, -$1.density) }) {
            let train = shards.first { $0.id == "train/\(point.name)" }
            let loss = train.flatMap { summary($0)["pretrain_loss"] }
            let edges = shards.filter { $0.id.hasPrefix("prune/\(point.name)/") && $0.state == .done }
                .compactMap { summary($0)["edges"] }.filter { $0 > 0 }
            let geomean = edges.isEmpty ? nil : exp(edges.map(log).reduce(0, +) / Double(edges.count))
            lines.append("  " + pad("\(point.dModel)", 7) + "  " + pad(String(format: "%g", point.density), 7)
                         + "  " + pad(String(format: "%g", point.afrac), 5) + "  " + pad("\(point.seed)", 4)
                         + "  " + pad(loss.map { String(format: "%.4f", $0) } ?? "-", 13)
                         + "  " + pad(geomean.map { String(format: "%.1f", $0) } ?? "-", 13)
                         + "  \(edges.count)/\(spec.grid.task.count)")
        }
        return lines.joined(separator: "\n")
    }
}

func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}
