import Foundation

/// The phases a training step's time is split into (`GPT.phaseTimes`).
public enum TrainingPhase: Int, CaseIterable, Sendable {
    case forwardProducts, absTopK, attention, inputGradients, weightGradients, optimizer, projection, compressedMatrices

    public var label: String {
        switch self {
        case .forwardProducts: return "forward products"
        case .absTopK: return "AbsTopK (forward and backward)"
        case .attention: return "attention (forward and backward)"
        case .inputGradients: return "input gradients"
        case .weightGradients: return "weight gradients"
        case .optimizer: return "optimizer (gradient RMS, Adam)"
        case .projection: return "top-k projection and decay"
        case .compressedMatrices: return "compressed matrices"
        }
    }
}

/// Nanoseconds spent per `TrainingPhase`, summed over the steps that ran while attached: wall time,
/// and the process's CPU time (all threads), which a shared machine's load disturbs less.
public final class PhaseTimes {
    public private(set) var nanoseconds = [UInt64](repeating: 0, count: TrainingPhase.allCases.count)
    public private(set) var cpuNanoseconds = [UInt64](repeating: 0, count: TrainingPhase.allCases.count)

    public init() {}

    /// A point in wall and CPU time to measure a phase from.
    public struct Start {
        let wall: UInt64
        let cpu: UInt64
    }

    /// The process's CPU time so far.
    public static func processCPUNanoseconds() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
        return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
    }

    public static func now() -> Start {
        Start(wall: DispatchTime.now().uptimeNanoseconds, cpu: processCPUNanoseconds())
    }

    func add(_ phase: TrainingPhase, since start: Start) {
        let end = PhaseTimes.now()
        nanoseconds[phase.rawValue] &+= end.wall &- start.wall
        cpuNanoseconds[phase.rawValue] &+= end.cpu &- start.cpu
    }
}

extension GPT {
    /// Runs `body`, adding its wall time to `phase` when `phaseTimes` is attached.
    @inline(__always)
    func timed<T>(_ phase: TrainingPhase, _ body: () -> T) -> T {
        guard let phaseTimes else { return body() }
        let start = PhaseTimes.now()
        let result = body()
        phaseTimes.add(phase, since: start)
        return result
    }
}
