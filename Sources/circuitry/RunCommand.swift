import ArgumentParser
import Foundation
import Sweep

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a sweep on this machine: a coordinator plus local workers, with live progress.")

    @Argument(help: "The sweep file (YAML), e.g. sweeps/quick.yaml.")
    var sweepFile: String

    @Option(help: "Run directory (default: runs/NAME).")
    var runDir: String?

    @Option(help: "Shards run at once on this machine (default: one per core).")
    var workers: Int = ProcessInfo.processInfo.activeProcessorCount

    func run() throws {
        let spec = try SweepSpec.load(from: URL(fileURLWithPath: sweepFile))
        let runDirectory = runDir.map { URL(fileURLWithPath: $0) } ?? RunDirectory.defaultURL(forSweep: spec.name)
        try RunDirectory(runDirectory).create(spec: spec)
        try runLocalSweep(runDirectory: runDirectory, slots: workers)
    }
}

/// Shared by `run` and `resume`.
func runLocalSweep(runDirectory: URL, slots: Int) throws {
    guard slots >= 1 else { throw ValidationError("--workers must be at least 1") }
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
