import ArgumentParser
import Foundation
import Sweep

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write a run's frontier data and plots (CSV, JSON, circuits, index.html), finished or running.")

    @OptionGroup var runDirectory: RunDirectoryArgument

    @Option(help: "Where to write the report (default: RUN_DIR/report).")
    var out: String?

    @Flag(help: "Keep rewriting the report while the sweep runs (the page reloads itself meanwhile).")
    var watch = false

    @Option(help: "Seconds between rewrites with --watch.")
    var every: Double = 30

    func validate() throws {
        guard every > 0 else { throw ValidationError("--every must be positive, got \(every)") }
    }

    func run() throws {
        let runDirectory = self.runDirectory.url
        let outDirectory = out.map { URL(fileURLWithPath: $0) }
        if watch {
            try RunReport.watch(runDirectory: runDirectory, to: outDirectory, every: every) { print($0) }
        } else {
            print(try RunReport.write(runDirectory: runDirectory, to: outDirectory), terminator: "")
        }
    }
}
