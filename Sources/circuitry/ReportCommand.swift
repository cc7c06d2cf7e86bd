import ArgumentParser
import Foundation
import Sweep

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write a run's frontier data and plots (CSV, JSON, circuits, index.html), finished or running.")

    @Argument(help: "The run directory of the sweep.")
    var runDir: String

    @Option(help: "Where to write the report (default: RUN_DIR/report).")
    var out: String?

    func run() throws {
        let runDirectory = URL(fileURLWithPath: runDir)
        let data = try ReportData.load(runDirectory: runDirectory)
        let outDirectory = out.map { URL(fileURLWithPath: $0) } ?? RunReport.directory(of: runDirectory)
        try ReportWriter(data: data).write(to: outDirectory)
        print(HeadlineText.render(data), terminator: "")
        print("Report: \(outDirectory.appendingPathComponent("index.html").path)")
    }
}
