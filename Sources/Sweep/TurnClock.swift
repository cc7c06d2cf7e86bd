/// The turns of a coordinator's or a worker's loop, which come every fraction of a second while
/// the process runs. A gap of over half the time after which the other side is presumed dead
/// means this process did not run (a suspended or frozen machine, a stopped process); that time
/// is nobody's silence, so the caller gives it back to whatever it was timing.
struct TurnClock {
    private var last: Double?

    /// The seconds since the previous turn when they make a stall, else 0.
    mutating func stall(now: Double, deadSeconds: Double) -> Double {
        defer { last = now }
        guard let last, now - last > deadSeconds / 2 else { return 0 }
        return now - last
    }
}
