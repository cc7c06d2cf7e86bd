import ArgumentParser
import Foundation
import Sweep

struct ExtendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extend",
        abstract: "Add grid points (seeds, widths, densities) to a sweep, keeping its finished shards.",
        discussion: """
            Every shard the run holds must be planned again unchanged by the sweep file (with its \
            --set overrides): same data, model, training and pruning settings. The new shards are \
            pending; run them with `circuitry resume RUN_DIR` or `circuitry coordinator --resume RUN_DIR`. \
            Example: circuitry extend runs/quick sweeps/quick.yaml --set 'grid.seed=[0, 1]'
            """)

    @OptionGroup var runDirectory: RunDirectoryArgument

    @Argument(help: "The sweep file, grown by the new grid points.")
    var sweepFile: String

    @OptionGroup var overrides: SweepOverrideOptions

    func run() throws {
        let spec = try overrides.load(sweepFile: sweepFile)
        let added = try RunDirectory(runDirectory.url).extend(to: spec)
        if added.isEmpty {
            print("the run already holds every shard of \(sweepFile); nothing added")
        } else {
            print("\(added.count) shards added and pending; run them with `circuitry resume \(runDirectory.path)` or a coordinator --resume")
        }
    }
}
