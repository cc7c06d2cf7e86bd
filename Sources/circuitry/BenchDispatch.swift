import ArgumentParser
import Foundation
import Sweep

struct BenchDispatch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dispatch",
        abstract: "Shards per second through lease, heartbeat and committed result, and the coordinator's memory.")

    @Option(help: "No-op shards to plan (all pending at the start).")
    var shards: Int = 100_000

    @Option(help: "Local worker processes.")
    var workers: Int = 4

    @Option(help: "Slots per worker (leases in flight each).")
    var slots: Int = 16

    @Flag(help: "Encrypt and authenticate the traffic with CurveZMQ, as across machines.")
    var curve = false

    @Flag(help: "Print one JSON line.")
    var json = false

    func run() throws {
        guard shards >= 1, workers >= 1, slots >= 1 else { throw ValidationError("counts must be at least 1") }
        let result = try DispatchBenchmark.run(shards: shards, workers: workers, slotsPerWorker: slots, curve: curve) { line in
            if !json { print(line) }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(result), as: UTF8.self))
        } else {
            print(String(format: "%d shards in %.2fs: %.0f shards/s with %d workers × %d slots; coordinator RSS %.1f MiB pending, %.1f MiB peak",
                         result.shards, result.seconds, result.shardsPerSecond, result.workers, result.slotsPerWorker,
                         result.coordinatorRSSMiBPending, result.coordinatorRSSMiBPeak))
        }
    }
}
