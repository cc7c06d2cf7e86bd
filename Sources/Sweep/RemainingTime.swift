import Foundation

/// A sweep's remaining wall time, estimated shard by shard. Dividing the elapsed time by the
/// shards done would weigh a 20,000-step training like a 2-minute prune; instead a running
/// shard that reports steps is projected from its own pace, and a shard that has not started
/// takes what the same shard of another seed took, or else the mean of its kind's finished shards.
public struct RemainingTime {
    public struct Estimate: Equatable {
        public var seconds: Double
        /// Some shard had nothing to go by (no finished shard of its kind): `seconds` leaves it out.
        public var isLowerBound: Bool
    }

    /// The first progress seen of each running attempt: its pace counts from there.
    private var firstProgress: [String: (step: Int, at: Double)] = [:]

    public init() {}

    /// `busySeconds`: the seconds every finished shard's attempts ran, by shard id; `started`:
    /// when each running shard's attempt began. nil when nothing is left or nothing is known yet.
    public mutating func estimate(shards: [ShardStatus], busySeconds: [String: Double], started: [String: Double],
                                  slots: Int, now: Double) -> Estimate? {
        var byModel: [String: Double] = [:]
        var byKind: [String: (sum: Double, count: Int)] = [:]
        for shard in shards where shard.state == .done {
            guard let seconds = busySeconds[shard.id] else { continue }
            byModel[Self.withoutSeed(shard.id)] = seconds
            byKind[shard.kind, default: (0, 0)].sum += seconds
            byKind[shard.kind, default: (0, 0)].count += 1
        }
        var total = 0.0, longest = 0.0, unknown = false, left = 0
        var running = Set<String>()
        for shard in shards where shard.state == .pending || shard.state == .leased {
            left += 1
            var remaining: Double?
            if shard.state == .leased {
                running.insert(shard.id)
                remaining = pace(of: shard, now: now)
            }
            if remaining == nil {
                let typical = byModel[Self.withoutSeed(shard.id)]
                    ?? byKind[shard.kind].map { $0.sum / Double($0.count) }
                let elapsed = shard.state == .leased ? now - (started[shard.id] ?? now) : 0
                remaining = typical.map { max(0, $0 - elapsed) }
            }
            guard let remaining else { unknown = true; continue }
            total += remaining
            longest = max(longest, remaining)
        }
        firstProgress = firstProgress.filter { running.contains($0.key) }
        guard left > 0, total > 0 || !unknown else { return nil }
        return Estimate(seconds: max(total / Double(max(1, slots)), longest), isLowerBound: unknown)
    }

    /// A running shard's remaining seconds at the pace it has kept since its progress was first seen.
    private mutating func pace(of shard: ShardStatus, now: Double) -> Double? {
        guard let step = shard.step, let totalSteps = shard.totalSteps, totalSteps > 0 else { return nil }
        guard let first = firstProgress[shard.id], first.step <= step else {
            firstProgress[shard.id] = (step, now)
            return nil
        }
        guard step > first.step, now > first.at else { return nil }
        return Double(totalSteps - step) * (now - first.at) / Double(step - first.step)
    }

    /// The shard's id without its seed: the same work for another seed (`train/d1-w64-a1-s0` and
    /// `-s1` train models of one shape).
    static func withoutSeed(_ id: String) -> String {
        id.replacingOccurrences(of: #"-s[0-9]+(?=/|-|$)"#, with: "", options: .regularExpression)
    }
}
