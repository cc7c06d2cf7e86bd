/// The method's tasks: generators of minimal pairs. For prompt A the correct continuation is
/// `target` and the wrong one `alt`; for prompt B they are swapped. A and B differ only in the
/// feature that decides the answer; names, values and filler lines come from `Pools`.
public struct PythonTask: Sendable {
    public let name: String
    public let summary: String
    /// Set when every pair has the same two continuations (all tasks but `var_swap`).
    public let fixedCandidates: (target: String, alt: String)?
    let makePair: @Sendable (inout SeededGenerator) -> TaskPair

    public static let all: [PythonTask] = [
        singleDoubleQuote, bracketCounting, setOrString, setOrStringFixedVarName, whileReturnTrue,
        bracketBrace, fstringBrace, varSwap, ifEquals, enumerateRange,
    ]

    public static func named(_ name: String) throws -> PythonTask {
        guard let task = all.first(where: { $0.name == name }) else {
            throw TaskError.unknownTask(name, known: all.map(\.name))
        }
        return task
    }

    /// One pair drawn from the generator (text only; `TaskPairs` tokenizes).
    public func samplePair(_ rng: inout SeededGenerator) -> TaskPair {
        makePair(&rng)
    }
}

/// One minimal pair as text.
public struct TaskPair: Equatable, Sendable {
    public let promptA: String
    public let promptB: String
    /// Correct for A, wrong for B.
    public let target: String
    /// Correct for B, wrong for A.
    public let alt: String
}

public enum TaskError: Error, CustomStringConvertible, Equatable {
    case unknownTask(String, known: [String])
    case candidatesCoincide(task: String, target: String, alt: String, token: String)
    case cannotFit(task: String, maxLength: Int, reason: String)

    public var description: String {
        switch self {
        case .unknownTask(let name, let known):
            return "unknown task '\(name)'; the tasks are: \(known.joined(separator: ", "))"
        case .candidatesCoincide(let task, let target, let alt, let token):
            return "task \(task): candidates \(target.debugDescription) and \(alt.debugDescription) both begin with token \(token.debugDescription) under this tokenizer; train the tokenizer on a corpus where they differ, or a larger vocabulary"
        case .cannotFit(let task, let maxLength, let reason):
            return "task \(task): cannot make enough pairs within \(maxLength) tokens: \(reason)"
        }
    }
}

// MARK: The ten generators

private func indentUnit(_ level: Int) -> String {
    String(repeating: "    ", count: level)
}

/// 0 to `max` filler lines at `indent`, none mentioning `avoiding`, each ending in a newline.
private func filler(_ rng: inout SeededGenerator, max: Int, indent: Int, avoiding: [String]) -> String {
    var s = ""
    for _ in 0..<rng.int(in: 0...max) {
        s += indentUnit(indent) + ProgramBuilder.fillerLine(&rng, avoiding: avoiding) + "\n"
    }
    return s
}

/// Either nothing (module level, indent 0) or a `def` header (indent 1).
private func opening(_ rng: inout SeededGenerator, avoiding: [String]) -> (String, Int) {
    if rng.chance(0.5) { return ("", 0) }
    var params: [String] = []
    for _ in 0..<rng.int(in: 0...2) {
        let p = ProgramBuilder.name(&rng, avoiding: avoiding + params)
        params.append(p)
    }
    return ("def \(Pools.functionName(&rng))(\(params.joined(separator: ", "))):\n", 1)
}

/// List elements; the last is a number, because a closing quote would merge with the bracket
/// that follows it (`"]` is one pre-token piece) and the candidate would never be seen alone.
private func elements(_ rng: inout SeededGenerator, count: Int, lastIsNumber: Bool) -> [String] {
    (0..<count).map { k in k == count - 1 && lastIsNumber ? Pools.number(&rng) : ProgramBuilder.listElement(&rng) }
}

extension PythonTask {
    static let singleDoubleQuote = PythonTask(
        name: "single_double_quote", summary: "close a string with the quote that opened it",
        fixedCandidates: ("\"", "'")
    ) { rng in
        let v = rng.pick(Pools.variables)
        let (head, indent) = opening(&rng, avoiding: [v])
        let pre = head + filler(&rng, max: 2, indent: indent, avoiding: [v])
        let lhs = indentUnit(indent) + "\(v) = "
        let words = Pools.phrase(&rng)
        return TaskPair(promptA: pre + lhs + "\"" + words, promptB: pre + lhs + "'" + words, target: "\"", alt: "'")
    }

    static let bracketCounting = PythonTask(
        name: "bracket_counting", summary: "close a nested list with ]] and a flat one with ]",
        fixedCandidates: ("]]", "]")
    ) { rng in
        let v = rng.pick(Pools.variables)
        let (head, indent) = opening(&rng, avoiding: [v])
        let pre = head + filler(&rng, max: 2, indent: indent, avoiding: [v]) + indentUnit(indent) + "\(v) = "
        let n = rng.int(in: 1...3)
        let groups = (0..<n).map { k in elements(&rng, count: rng.int(in: 1...3), lastIsNumber: k == n - 1) }
        let nested = "[" + groups.map { "[" + $0.joined(separator: ", ") }.joined(separator: "], ")
        let flat = "[" + groups.flatMap { $0 }.joined(separator: ", ")
        return TaskPair(promptA: pre + nested, promptB: pre + flat, target: "]]", alt: "]")
    }

    static func setOrStringPair(_ rng: inout SeededGenerator, variable: String?) -> TaskPair {
        let v = variable ?? rng.pick(Pools.variables)
        let (head, indent) = opening(&rng, avoiding: [v])
        let pre = head + filler(&rng, max: 1, indent: indent, avoiding: [v]) + indentUnit(indent) + "\(v) = "
        let quotes = rng.chance(0.5) ? "\"\"" : "''"
        var post = "\n"
        for _ in 0..<rng.int(in: 1...3) {
            post += indentUnit(indent) + ProgramBuilder.fillerLine(&rng, avoiding: [v]) + "\n"
        }
        post += indentUnit(indent) + v
        return TaskPair(promptA: pre + "set()" + post, promptB: pre + quotes + post, target: ".", alt: " +=")
    }

    static let setOrString = PythonTask(
        name: "set_or_string", summary: "a variable set to set() is extended with .add, one set to \"\" with +=",
        fixedCandidates: (".", " +=")
    ) { rng in
        setOrStringPair(&rng, variable: nil)
    }

    static let setOrStringFixedVarName = PythonTask(
        name: "set_or_string_fixedvarname", summary: "set_or_string with the variable always named current",
        fixedCandidates: (".", " +=")
    ) { rng in
        setOrStringPair(&rng, variable: "current")
    }

    static let whileReturnTrue = PythonTask(
        name: "while_return_true", summary: "while True is followed by a colon, return True by a newline",
        fixedCandidates: (":", "\n")
    ) { rng in
        var params: [String] = []
        for _ in 0..<rng.int(in: 0...2) { params.append(ProgramBuilder.name(&rng, avoiding: params)) }
        let pre = "def \(Pools.functionName(&rng))(\(params.joined(separator: ", "))):\n"
            + filler(&rng, max: 2, indent: 1, avoiding: []) + "    "
        return TaskPair(promptA: pre + "while True", promptB: pre + "return True", target: ":", alt: "\n")
    }

    static let bracketBrace = PythonTask(
        name: "bracket_brace", summary: "close a list with ] and a set with }",
        fixedCandidates: ("]", "}")
    ) { rng in
        let v = rng.pick(Pools.variables)
        let (head, indent) = opening(&rng, avoiding: [v])
        let pre = head + filler(&rng, max: 2, indent: indent, avoiding: [v]) + indentUnit(indent) + "\(v) = "
        let items = elements(&rng, count: rng.int(in: 1...4), lastIsNumber: true).joined(separator: ", ")
        return TaskPair(promptA: pre + "[" + items, promptB: pre + "{" + items, target: "]", alt: "}")
    }

    static let fstringBrace = PythonTask(
        name: "fstring_brace", summary: "close an f-string placeholder with } and a str( call with )",
        fixedCandidates: ("}", ")")
    ) { rng in
        let v = rng.pick(Pools.variables)
        let x = ProgramBuilder.name(&rng, avoiding: [v])
        let (head, indent) = opening(&rng, avoiding: [v, x])
        let pre = head + filler(&rng, max: 2, indent: indent, avoiding: [v]) + indentUnit(indent) + "\(v) = "
        let quote = rng.chance(0.8) ? "\"" : "'"
        return TaskPair(promptA: pre + "f\(quote){\(x)", promptB: pre + "str(\(x)", target: "}", alt: ")")
    }

    static let varSwap = PythonTask(
        name: "var_swap", summary: "a, b = b, is completed with a; b, a = a, with b",
        fixedCandidates: nil
    ) { rng in
        let a = rng.pick(Pools.shortVariables)
        var b = rng.pick(Pools.shortVariables)
        while b == a { b = rng.pick(Pools.shortVariables) }
        let (head, indent) = opening(&rng, avoiding: [a, b])
        var pre = head + filler(&rng, max: 2, indent: indent, avoiding: [a, b]) + indentUnit(indent)
        // As in the corpus, the swap sometimes orders two values (the same line in A and B).
        if rng.chance(0.3) {
            let (x, y) = rng.chance(0.5) ? (a, b) : (b, a)
            pre += "if \(x) \(rng.pick([">", "<", ">=", "<="])) \(y):\n" + indentUnit(indent + 1)
        }
        return TaskPair(promptA: pre + "\(a), \(b) = \(b),", promptB: pre + "\(b), \(a) = \(a),",
                        target: " " + a, alt: " " + b)
    }

    static let ifEquals = PythonTask(
        name: "if_equals", summary: "a condition compares with ==, a statement assigns with =",
        fixedCandidates: (" ==", " =")
    ) { rng in
        let x = rng.pick(Pools.variables)
        let (head, indent) = opening(&rng, avoiding: [x])
        let pre = head + filler(&rng, max: 2, indent: indent, avoiding: [x]) + indentUnit(indent)
        return TaskPair(promptA: pre + "if \(x)", promptB: pre + x, target: " ==", alt: " =")
    }

    static let enumerateRange = PythonTask(
        name: "enumerate_range", summary: "for i, x in loops over enumerate, for i in over range",
        fixedCandidates: (" enumerate", " range")
    ) { rng in
        let i = rng.pick(Pools.indices)
        let x = ProgramBuilder.name(&rng, avoiding: [i])
        let (head, indent) = opening(&rng, avoiding: [i, x])
        let pre = head + filler(&rng, max: 2, indent: indent, avoiding: [i]) + indentUnit(indent)
        return TaskPair(promptA: pre + "for \(i), \(x) in", promptB: pre + "for \(i) in",
                        target: " enumerate", alt: " range")
    }
}
