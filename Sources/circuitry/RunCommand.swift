import ArgumentParser
import Foundation
import Sweep

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a sweep on this machine: a coordinator plus local workers, with live progress.")

    @Argument(help: "The sweep file (YAML), e.g. sweeps/quick.yaml.")
    var sweepFile: String

    @OptionGroup var newSweep: NewSweepOptions

    @OptionGroup var slots: LocalSlotsOption

    func validate() throws {
        try ArgumentChecks.sweepFile(sweepFile)
    }

    func run() throws {
        try runLocalSweep(runDirectory: try newSweep.createRun(sweepFile: sweepFile), slots: slots.count)
    }
}

/// Shared by `run` and `resume`.
func runLocalSweep(runDirectory: URL, slots: Int) throws {
    StopSignal.install()
    let counts = try LocalSweep(options: .init(runDirectory: runDirectory, slots: slots)).run()
    print(StatusReport.table(try StatusReport.snapshot(runDirectory: runDirectory)))
    print(try RunReport.write(runDirectory: runDirectory), terminator: "")
    print("run directory: \(runDirectory.path)")
    if counts.failed > 0 {
        print("\(counts.failed) shards failed; see `circuitry status \(runDirectory.path)`, then `circuitry retry \(runDirectory.path) --failed`")
        throw ExitCode(1)
    }
}
