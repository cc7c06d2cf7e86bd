import Foundation

/// The lines a shard's child process writes to its standard output for the worker, beside its
/// ordinary log lines: `@<tag> <fields>`, one per line. A new tag is added here, in one place, for
/// both sides; a worker ignores the tags it does not know, and keeps them out of the log tail.
enum ChildLine: Equatable {
    /// `@progress STEP TOTAL LOSS` (LOSS is `-` when there is none).
    case progress(step: Int, total: Int, loss: Double?)
    /// `@checkpoint STEP PATH`: an intermediate checkpoint to upload; the path may contain spaces.
    case checkpoint(step: Int, path: String)

    static let marker: Character = "@"

    var text: String {
        switch self {
        case .progress(let step, let total, let loss): return "@progress \(step) \(total) \(loss.map { String($0) } ?? "-")"
        case .checkpoint(let step, let path): return "@checkpoint \(step) \(path)"
        }
    }

    /// The protocol line `line` is, or nil for an ordinary log line.
    static func parse(_ line: String) -> ChildLine? {
        guard line.first == marker else { return nil }
        let fields = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
        switch fields[0] {
        case "@progress":
            guard fields.count == 4, let step = Int(fields[1]), let total = Int(fields[2]) else { return nil }
            return .progress(step: step, total: total, loss: Double(fields[3]))
        case "@checkpoint":
            let parts = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 3, let step = Int(parts[1]), !parts[2].isEmpty else { return nil }
            return .checkpoint(step: step, path: parts[2])
        default:
            return nil
        }
    }

    /// Whether a line belongs to the protocol (known or not) rather than to the log.
    static func isProtocolLine(_ line: String) -> Bool {
        line.first == marker && line.dropFirst().first?.isLetter == true
    }
}

/// How a shard's child process ends, by its exit status.
public enum ShardExitStatus {
    public static let succeeded: Int32 = 0
    /// An error another attempt may not meet (input/output, resources, a bug that depends on timing).
    public static let failed: Int32 = 2
    /// The worker that started it is gone.
    public static let orphaned: Int32 = 3
    /// A deterministic error: a configuration, tokenizer or task error. Another attempt would
    /// fail the same way, so the shard fails at once.
    public static let failedPermanently: Int32 = 4
}

/// An error of a shard that no retry can mend: its parameters or inputs are wrong for it.
public struct PermanentShardError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
