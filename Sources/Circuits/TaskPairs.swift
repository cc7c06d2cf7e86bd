import Foundation

/// Minimal pairs of one task as plain arrays: prompt 2i is pair i's A, prompt
/// 2i+1 its B. Prompts are right-padded to `width`; the answer is read at position `length − 1`;
/// `candidates` holds [correct, wrong] token ids per prompt.
public struct TaskPairs: Equatable, Sendable {
    /// Number of prompts (twice the number of pairs).
    public let count: Int
    /// Padded prompt length.
    public let width: Int
    /// [count × width] token ids, row-major.
    public let prompts: [Int32]
    /// [count] prompt lengths, each in 1...width.
    public let lengths: [Int32]
    /// [count × 2] = [correct, wrong] per prompt.
    public let candidates: [Int32]

    public init(width: Int, prompts: [Int32], lengths: [Int32], candidates: [Int32]) throws {
        let count = lengths.count
        guard width > 0 else { throw CircuitError.invalidPairs("prompt width must be positive, got \(width)") }
        guard count > 0, count % 2 == 0 else {
            throw CircuitError.invalidPairs("needs an even, nonzero number of prompts (A/B pairs), got \(count)")
        }
        guard prompts.count == count * width else {
            throw CircuitError.invalidPairs("prompts hold \(prompts.count) tokens, expected \(count) × \(width)")
        }
        guard candidates.count == count * 2 else {
            throw CircuitError.invalidPairs("candidates hold \(candidates.count) ids, expected \(count) × 2")
        }
        if let bad = lengths.firstIndex(where: { $0 < 1 || Int($0) > width }) {
            throw CircuitError.invalidPairs("prompt \(bad) has length \(lengths[bad]), outside 1...\(width)")
        }
        if let bad = prompts.firstIndex(where: { $0 < 0 }) {
            throw CircuitError.invalidPairs("prompt \(bad / width) has a negative token id")
        }
        if let bad = candidates.firstIndex(where: { $0 < 0 }) {
            throw CircuitError.invalidPairs("prompt \(bad / 2) has a negative candidate token id")
        }
        for p in 0..<count where candidates[2 * p] == candidates[2 * p + 1] {
            throw CircuitError.invalidPairs("prompt \(p): correct and wrong candidates are the same token \(candidates[2 * p])")
        }
        self.count = count
        self.width = width
        self.prompts = prompts
        self.lengths = lengths
        self.candidates = candidates
    }

    public var pairCount: Int { count / 2 }

    /// Largest token id used in prompts or candidates.
    public var maxToken: Int32 { max(prompts.max() ?? 0, candidates.max() ?? 0) }

    /// The distinct candidate tokens (the `lm_head` rows a circuit reads).
    public var candidateTokens: [Int] { Array(Set(candidates.map(Int.init))).sorted() }

    /// The given pairs (both prompts of each), with the width cut to their longest prompt.
    public func selecting(pairs: [Int]) -> TaskPairs {
        let rows = pairs.flatMap { [2 * $0, 2 * $0 + 1] }
        let newWidth = Int(rows.map { lengths[$0] }.max() ?? 1)
        var newPrompts: [Int32] = []
        newPrompts.reserveCapacity(rows.count * newWidth)
        for r in rows { newPrompts += prompts[(r * width)..<(r * width + newWidth)] }
        return try! TaskPairs(width: newWidth, prompts: newPrompts, lengths: rows.map { lengths[$0] },
                              candidates: rows.flatMap { [candidates[2 * $0], candidates[2 * $0 + 1]] })
    }

    /// The same pairs with the width cut to the longest prompt (padding past it is never read).
    public func trimmed() -> TaskPairs { selecting(pairs: Array(0..<pairCount)) }
}

/// A task's train and test pairs, as stored in a pairs file.
public struct TaskData: Equatable, Sendable {
    public let task: String
    public let train: TaskPairs
    public let test: TaskPairs

    public init(task: String, train: TaskPairs, test: TaskPairs) {
        self.task = task
        self.train = train
        self.test = test
    }
}

/// Reading and writing pairs files, the format `circuitry tasks export` writes: a JSON object
/// keyed by task name, each `{"train": SPLIT, "test": SPLIT}`, where SPLIT is
/// `{"width": W, "prompts": [[id × W], ...] (right-padded), "lengths": [n, ...],
/// "candidates": [correct, wrong, correct, wrong, ...]}`, and the key `tokenizer_sha256`: the
/// SHA-256 of the tokenizer that made the ids (absent in files written without one), so that a
/// model is never scored on another vocabulary's ids. Tasks come back sorted by name.
public enum TaskPairsFile {
    private struct Split: Codable {
        var width: Int
        var prompts: [[Int32]]
        var lengths: [Int32]
        var candidates: [Int32]
    }
    private struct Entry: Codable {
        var train: Split
        var test: Split
    }
    static let tokenizerKey = "tokenizer_sha256"

    /// The whole file: the tasks by name beside the optional tokenizer hash.
    private struct Body: Codable {
        var tasks: [String: Entry]
        var tokenizerHash: String?

        private struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        init(tasks: [String: Entry], tokenizerHash: String?) {
            self.tasks = tasks
            self.tokenizerHash = tokenizerHash
        }

        init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: Key.self)
            tasks = [:]
            for key in container.allKeys {
                if key.stringValue == TaskPairsFile.tokenizerKey {
                    tokenizerHash = try container.decode(String.self, forKey: key)
                } else {
                    tasks[key.stringValue] = try container.decode(Entry.self, forKey: key)
                }
            }
        }

        func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: Key.self)
            for (task, entry) in tasks { try container.encode(entry, forKey: Key(stringValue: task)) }
            if let tokenizerHash { try container.encode(tokenizerHash, forKey: Key(stringValue: TaskPairsFile.tokenizerKey)) }
        }
    }

    public static func load(_ url: URL) throws -> [TaskData] { try loadWithTokenizer(url).tasks }

    /// The tasks and the SHA-256 of the tokenizer the file records (nil if it records none).
    public static func loadWithTokenizer(_ url: URL) throws -> (tasks: [TaskData], tokenizerHash: String?) {
        let raw: Data
        do { raw = try Data(contentsOf: url) } catch {
            throw CircuitError.invalidPairs("\(url.path): cannot read (\(error.localizedDescription))")
        }
        let body: Body
        do { body = try JSONDecoder().decode(Body.self, from: raw) } catch {
            throw CircuitError.invalidPairs("\(url.path): not a pairs file (\(describe(error)))")
        }
        let entries = body.tasks
        guard !entries.isEmpty else { throw CircuitError.invalidPairs("\(url.path): holds no task") }
        let tasks = try entries.keys.sorted().map { task in
            TaskData(task: task, train: try pairs(entries[task]!.train, where: "\(url.path): task \(task), train"),
                     test: try pairs(entries[task]!.test, where: "\(url.path): task \(task), test"))
        }
        return (tasks, body.tokenizerHash)
    }

    /// Writes the tasks; `tokenizerHash` is the SHA-256 of the tokenizer that made their ids.
    public static func save(_ tasks: [TaskData], tokenizerHash: String?, to url: URL) throws {
        func split(_ p: TaskPairs) -> Split {
            Split(width: p.width, prompts: (0..<p.count).map { Array(p.prompts[($0 * p.width)..<(($0 + 1) * p.width)]) },
                  lengths: p.lengths, candidates: p.candidates)
        }
        let entries = Dictionary(uniqueKeysWithValues: tasks.map { ($0.task, Entry(train: split($0.train), test: split($0.test))) })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try encoder.encode(Body(tasks: entries, tokenizerHash: tokenizerHash)).write(to: url)
    }

    private static func pairs(_ split: Split, where place: String) throws -> TaskPairs {
        guard split.lengths.count == split.prompts.count else {
            throw CircuitError.invalidPairs("\(place): \(split.lengths.count) lengths for \(split.prompts.count) prompts")
        }
        if let bad = split.prompts.firstIndex(where: { $0.count != split.width }) {
            throw CircuitError.invalidPairs("\(place): prompts[\(bad)] has \(split.prompts[bad].count) tokens, expected width \(split.width)")
        }
        do {
            return try TaskPairs(width: split.width, prompts: split.prompts.flatMap { $0 }, lengths: split.lengths,
                                 candidates: split.candidates)
        } catch let error as CircuitError {
            throw CircuitError.invalidPairs("\(place): \(error)")
        }
    }

    private static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let context):
            return "missing field \((context.codingPath + [key]).map(\.stringValue).joined(separator: "."))"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            return "bad value at \(context.codingPath.map(\.stringValue).joined(separator: ".")): \(context.debugDescription)"
        case DecodingError.dataCorrupted(let context):
            return context.debugDescription
        default:
            return "\(error)"
        }
    }
}
