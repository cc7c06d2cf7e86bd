import ArgumentParser
import Foundation
import Sweep

struct ResumeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume",
        abstract: "Continue a stopped sweep with local workers.")

    @OptionGroup var runDirectory: RunDirectoryArgument

    @OptionGroup var slots: LocalSlotsOption

    func run() throws {
        _ = try RunDirectory(runDirectory.url).openStore(readOnly: true)
        try runLocalSweep(runDirectory: runDirectory.url, slots: slots.count)
    }
}
