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
        let store = try RunDirectory(runDirectory).openStore(readOnly: true)
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
}

func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}
