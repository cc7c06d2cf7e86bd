/// An unbounded, seeded stream of small synthetic Python programs.
///
/// Programs are rich in the constructs the tasks test, each with a clean signal: strings in both
/// quote styles closed on their own, nested lists closed at the end of a line, `set()` later
/// extended with `.add(...)` and `""` with `+=`, `while True:` loops and functions ending in
/// `return True`, f-strings opening on a placeholder, tuple swaps, `if` comparisons next to plain
/// assignments, and `for` loops over `range(...)` and `enumerate(...)`. Every program is valid
/// Python 3.
public struct SyntheticPython: Sequence, IteratorProtocol {
    private var rng: SeededGenerator

    /// `stream` selects an independent stream of the same seed (0 for training, 1 for held-out).
    public init(seed: UInt64, stream: UInt64 = 0) {
        rng = SeededGenerator(seed: seed, stream: stream)
    }

    public mutating func next() -> String? {
        program()
    }

    /// The next program: a few imports, functions, classes and top-level statements.
    public mutating func program() -> String {
        let builder = ProgramBuilder(rng: rng)
        builder.module()
        rng = builder.rng
        return builder.text()
    }

    /// Generated programs concatenated (separated by a blank line) until at least `bytes` bytes.
    public mutating func text(bytes: Int) -> String {
        var parts: [String] = []
        var total = 0
        while total < bytes {
            let p = program()
            total += p.utf8.count + 1
            parts.append(p)
        }
        return parts.joined(separator: "\n")
    }
}

/// Builds one program line by line. Also the source of filler lines for task prompts.
final class ProgramBuilder {
    var rng: SeededGenerator
    private(set) var lines: [String] = []
    private var indent = 0
    private var inFunction = false
    /// Names of this program's set and string accumulators, used for nothing else.
    private var accumulators: [String] = []
    /// Lines that are statements (not comments or blank lines): a block needs at least one.
    private var statementCount = 0

    init(rng: SeededGenerator) {
        self.rng = rng
    }

    func text() -> String {
        lines.joined(separator: "\n") + "\n"
    }

    private func line(_ s: String) {
        if s.isEmpty {
            lines.append("")
            return
        }
        lines.append(String(repeating: "    ", count: indent) + s)
        if !s.hasPrefix("#") { statementCount += 1 }
    }

    private func block(_ header: String, _ body: () -> Void) {
        line(header)
        indent += 1
        let before = statementCount
        body()
        if statementCount == before { line("pass") }
        indent -= 1
    }

    // MARK: Module level

    func module() {
        if rng.chance(0.25) { line("# \(Pools.phrase(&rng, maxWords: 5))") }
        if rng.chance(0.4) {
            for _ in 0..<rng.int(in: 1...3) {
                if rng.chance(0.6) {
                    line("import \(rng.pick(Pools.modules))")
                } else {
                    line("from \(rng.pick(Pools.modules)) import \(rng.pick(Pools.nouns))")
                }
            }
            line("")
        }
        let items = rng.int(in: 1...3)
        for k in 0..<items {
            switch rng.weightedIndex([55, 15, 30]) {
            case 0: function()
            case 1: classDefinition()
            default: topLevelStatements()
            }
            if k < items - 1 {
                line("")
                if rng.chance(0.6) { line("") }
            }
        }
    }

    private func parameters(max: Int) -> [String] {
        var names: [String] = []
        for _ in 0..<rng.int(in: 0...max) {
            let n = variable()
            if !names.contains(n) { names.append(n) }
        }
        return names
    }

    private func function(method: Bool = false) {
        var params = parameters(max: 3)
        if method { params.insert("self", at: 0) }
        let name = method && rng.chance(0.2) ? "__init__" : Pools.functionName(&rng)
        block("def \(name)(\(params.joined(separator: ", "))):") {
            inFunction = true
            if rng.chance(0.2) { line("\"\"\"\(Pools.phrase(&rng, maxWords: 5).capitalizedFirst).\"\"\"") }
            if name == "__init__" {
                for p in params.dropFirst() { line("self.\(p) = \(p)") }
                if params.count == 1 { line("self.\(variable()) = \(expression())") }
            } else {
                for _ in 0..<rng.int(in: 2...6) { statement() }
                switch rng.weightedIndex([25, 10, 45, 20]) {
                case 0: line("return True")
                case 1: line("return False")
                case 2: line("return \(expression())")
                default: break
                }
            }
            inFunction = false
        }
    }

    private func classDefinition() {
        let name = rng.pick(Pools.classes)
        let header = rng.chance(0.3) ? "class \(name)(\(rng.pick(Pools.classes))):" : "class \(name):"
        block(header) {
            if rng.chance(0.3) { line("\"\"\"\(Pools.phrase(&rng, maxWords: 5).capitalizedFirst).\"\"\"") }
            let methods = rng.int(in: 1...3)
            for k in 0..<methods {
                function(method: true)
                if k < methods - 1 { line("") }
            }
        }
    }

    private func topLevelStatements() {
        for _ in 0..<rng.int(in: 2...5) { statement() }
        if rng.chance(0.15) {
            block("if __name__ == \"__main__\":") { line("\(Pools.functionName(&rng))()") }
        }
    }

    // MARK: Statements

    private func statement() {
        let simpleOnly = indent >= 3
        let weights = [
            10, 8, 14, 5,                   // assignment, string, nested list, set/dict
            simpleOnly ? 0 : 8,             // set() ... .add
            simpleOnly ? 0 : 12,            // "" ... +=
            4, 5, 5, 14, 2, 3,              // counter, f-string, str(), swap, append, comment
            simpleOnly ? 0 : 4,             // while True
            simpleOnly ? 0 : 8,             // if
            simpleOnly ? 0 : 5,             // for range
            simpleOnly ? 0 : 5,             // for enumerate
            simpleOnly ? 0 : 3,             // for each
            inFunction && !simpleOnly ? 4 : 0, // if ...: return True
            4,                              // call
        ]
        switch rng.weightedIndex(weights) {
        case 0: line("\(variable()) = \(expression())")
        case 1: line("\(variable()) = \(stringLiteral())")
        case 2: line("\(variable()) = \(nestedList(depth: rng.weightedIndex([0, 3, 6, 2])))")
        case 3: line("\(variable()) = \(rng.chance(0.5) ? setLiteral() : dictLiteral())")
        case 4: setAccumulation()
        case 5: stringAccumulation()
        case 6: counterAccumulation()
        case 7: line(fString())
        case 8: line(strCall())
        case 9: tupleSwap()
        case 10: line("\(variable()).append(\(expression()))")
        case 11: line("# \(Pools.phrase(&rng, maxWords: 6))")
        case 12: whileTrue()
        case 13: ifStatement()
        case 14: forRange()
        case 15: forEnumerate()
        case 16: forEach()
        case 17: earlyReturn()
        default: line(call())
        }
    }

    private func body(_ count: ClosedRange<Int>) {
        for _ in 0..<rng.int(in: count) { statement() }
    }

    /// `v = set()`, a few unrelated lines, then `v.add(...)`; the line-start `v` is followed by `.`.
    private func setAccumulation() {
        let v = accumulatorName()
        line("\(v) = set()")
        fillerLines(avoiding: v)
        if rng.chance(0.3) {
            let x = otherName(than: v)
            block("for \(x) in \(otherName(than: v, x)):") { line("\(v).add(\(x))") }
        } else {
            for _ in 0..<rng.int(in: 1...2) { line("\(v).add(\(expression(avoiding: v)))") }
        }
    }

    /// `v = ""`, a few unrelated lines, then `v += ...`; the line-start `v` is followed by ` +=`.
    private func stringAccumulation() {
        let v = accumulatorName()
        line("\(v) = \(rng.chance(0.5) ? "\"\"" : "''")")
        fillerLines(avoiding: v)
        let addition = { [self] () -> String in
            switch rng.below(3) {
            case 0: return stringLiteral()
            case 1: return "str(\(otherName(than: v)))"
            default: return "f\"{\(otherName(than: v))} \""
            }
        }
        if rng.chance(0.3) {
            let x = otherName(than: v)
            block("for \(x) in \(otherName(than: v, x)):") { line("\(v) += \(addition())") }
        } else {
            for _ in 0..<rng.int(in: 1...2) { line("\(v) += \(addition())") }
        }
    }

    private func counterAccumulation() {
        let v = otherName(pool: ["total", "count", "n", "counter", "score", "size", "amount"])
        line("\(v) = 0")
        let x = otherName(than: v)
        block("for \(x) in \(otherName(than: v, x)):") { line("\(v) += \(rng.chance(0.5) ? "1" : x)") }
    }

    /// A fresh set/string accumulator name, often `current` (which a task fixes as its variable).
    /// It is reserved for the rest of the program, so every later line starting with it continues
    /// the way its initialisation implies (`.add` for a set, `+=` for a string).
    private func accumulatorName() -> String {
        let v = rng.chance(0.25) && !accumulators.contains("current") ? "current" : variable()
        accumulators.append(v)
        return v
    }

    private func fillerLines(avoiding v: String) {
        for _ in 0..<rng.weightedIndex([2, 4, 3, 1]) {
            line(ProgramBuilder.fillerLine(&rng, avoiding: accumulators + [v]))
        }
    }

    private func whileTrue() {
        block("while True:") {
            let x = variable()
            line("\(x) = \(expression())")
            block("if \(x) \(rng.pick(Pools.comparisons)) \(Pools.number(&rng)):") { line("break") }
            body(0...2)
        }
    }

    private func condition(on x: String) -> String {
        switch rng.weightedIndex([50, 30, 10, 10]) {
        case 0: return "\(x) == \(rng.chance(0.7) ? Pools.number(&rng) : stringLiteral())"
        case 1: return "\(x) \(rng.pick(Pools.comparisons)) \(expression(avoiding: x))"
        case 2: return "\(x) in \(otherName(than: x))"
        default: return x
        }
    }

    private func ifStatement() {
        let x = variable()
        if rng.chance(0.4) { line("\(x) = \(expression(avoiding: x))") }
        block("if \(condition(on: x)):") {
            if rng.chance(0.4) { line("\(x) = \(expression(avoiding: x))") }
            body(1...2)
        }
        if rng.chance(0.3) { block("elif \(condition(on: x)):") { body(1...2) } }
        if rng.chance(0.3) { block("else:") { body(1...2) } }
    }

    private func earlyReturn() {
        let x = variable()
        block("if \(condition(on: x)):") { line("return True") }
    }

    private func forRange() {
        let i = rng.pick(Pools.indices)
        let bound: String
        switch rng.below(4) {
        case 0: bound = Pools.number(&rng)
        case 1: bound = "len(\(otherName(than: i)))"
        case 2: bound = "\(Pools.number(&rng)), \(Pools.number(&rng))"
        default: bound = otherName(than: i)
        }
        block("for \(i) in range(\(bound)):") { body(1...2) }
    }

    private func forEnumerate() {
        let i = rng.pick(Pools.indices)
        let x = otherName(than: i)
        let seq = otherName(than: i, x)
        // Mostly enumerate, sometimes dict items: a two-name loop is never over range.
        let iterable = rng.chance(0.85) ? "enumerate(\(seq))" : "\(seq).items()"
        block("for \(i), \(x) in \(iterable):") { body(1...2) }
    }

    private func forEach() {
        let x = variable()
        block("for \(x) in \(otherName(than: x)):") { body(1...2) }
    }

    private func call() -> String {
        switch rng.below(4) {
        case 0: return "print(\(expression()))"
        case 1: return "\(variable()) = \(Pools.functionName(&rng))(\(expression()), \(expression()))"
        case 2: return "\(Pools.functionName(&rng))(\(expression()))"
        default: return "\(variable()).\(rng.pick(Pools.verbs))(\(expression()))"
        }
    }

    private func fString() -> String {
        let a = variable()
        let body: String
        switch rng.weightedIndex([6, 2, 2]) {
        case 0: body = "{\(a)} \(Pools.phrase(&rng, maxWords: 3))" + (rng.chance(0.5) ? " {\(otherName(than: a))}" : "")
        case 1: body = "\(Pools.phrase(&rng, maxWords: 2)) {\(a)}"
        default: body = "{\(a)}: {\(otherName(than: a))}"
        }
        let quote = rng.chance(0.8) ? "\"" : "'"
        let literal = "f\(quote)\(body)\(quote)"
        return rng.chance(0.75) ? "\(variable()) = \(literal)" : "print(\(literal))"
    }

    private func strCall() -> String {
        let a = variable()
        switch rng.weightedIndex([6, 3, 1]) {
        case 0: return "\(otherName(than: a)) = str(\(a))"
        case 1: return "\(otherName(than: a)) = \(stringLiteral()) + str(\(a))"
        default: return "print(str(\(a)))"
        }
    }

    /// `a, b = b, a` (sometimes `a, b = b, a + b`), often under `if a > b:` as when ordering two
    /// values, which also shows both names after a space, the form the swap's answer takes.
    private func tupleSwap() {
        let a = rng.pick(Pools.shortVariables)
        let b = otherName(than: a, pool: Pools.shortVariables)
        let swap = rng.chance(0.8) ? "\(a), \(b) = \(b), \(a)" : "\(a), \(b) = \(b), \(a) + \(b)"
        if indent < 3 && rng.chance(0.3) {
            let (x, y) = rng.chance(0.5) ? (a, b) : (b, a)
            block("if \(x) \(rng.pick([">", "<", ">=", "<="])) \(y):") { line(swap) }
        } else {
            line(swap)
        }
    }

    // MARK: Expressions

    /// A variable name that is not an accumulator of this program.
    private func variable() -> String {
        otherName()
    }

    private func otherName(than taken: String..., pool: [String] = Pools.variables) -> String {
        for _ in 0..<16 {
            let n = rng.pick(pool)
            if !taken.contains(n) && !accumulators.contains(n) { return n }
        }
        // Rarely reached: pick among what is left, or reuse an accumulator if nothing is.
        let free = pool.filter { !taken.contains($0) && !accumulators.contains($0) }
        return free.isEmpty ? rng.pick(pool.filter { !taken.contains($0) }) : rng.pick(free)
    }

    private func expression(avoiding v: String = "") -> String {
        ProgramBuilder.expression(&rng, avoiding: accumulators + (v.isEmpty ? [] : [v]))
    }

    private func stringLiteral() -> String {
        ProgramBuilder.stringLiteral(&rng)
    }

    static func stringLiteral(_ rng: inout SeededGenerator) -> String {
        let q = rng.chance(0.5) ? "\"" : "'"
        return q + Pools.phrase(&rng) + q
    }

    static func name(_ rng: inout SeededGenerator, avoiding: [String]) -> String {
        while true {
            let n = rng.pick(Pools.variables)
            if !avoiding.contains(n) { return n }
        }
    }

    static func expression(_ rng: inout SeededGenerator, avoiding: [String]) -> String {
        switch rng.weightedIndex([4, 3, 2, 2, 2, 1]) {
        case 0: return name(&rng, avoiding: avoiding)
        case 1: return Pools.number(&rng)
        case 2: return stringLiteral(&rng)
        case 3: return "\(name(&rng, avoiding: avoiding)) \(rng.pick(["+", "-", "*", "//", "%"])) \(Pools.number(&rng))"
        case 4: return "\(rng.pick(Pools.builtinCalls))(\(name(&rng, avoiding: avoiding)))"
        default: return "\(name(&rng, avoiding: avoiding))[\(rng.below(4))]"
        }
    }

    private func nestedList(depth: Int) -> String {
        ProgramBuilder.nestedList(&rng, depth: depth)
    }

    static func listElement(_ rng: inout SeededGenerator) -> String {
        rng.chance(0.8) ? Pools.number(&rng) : stringLiteral(&rng)
    }

    /// A list of `depth` levels. A flat list has up to 9 elements, as many as a nested one of
    /// 3 inner lists of up to 3, so length alone never tells a nested list from a flat one.
    static func nestedList(_ rng: inout SeededGenerator, depth: Int, inner: Bool = false) -> String {
        if depth <= 1 {
            let count = inner ? rng.int(in: 1...3) : rng.int(in: 1...9)
            return "[" + (0..<count).map { _ in listElement(&rng) }.joined(separator: ", ") + "]"
        }
        return "[" + (0..<rng.int(in: 1...3)).map { _ in nestedList(&rng, depth: depth - 1, inner: true) }.joined(separator: ", ") + "]"
    }

    private func setLiteral() -> String {
        "{" + (0..<rng.int(in: 1...4)).map { _ in ProgramBuilder.listElement(&rng) }.joined(separator: ", ") + "}"
    }

    private func dictLiteral() -> String {
        "{" + (0..<rng.int(in: 1...3)).map { _ in
            "\(ProgramBuilder.stringLiteral(&rng)): \(ProgramBuilder.listElement(&rng))"
        }.joined(separator: ", ") + "}"
    }

    /// One self-contained line that mentions none of `avoiding`: filler between a variable's
    /// initialisation and its use, here and in task prompts.
    static func fillerLine(_ rng: inout SeededGenerator, avoiding: [String]) -> String {
        let x = name(&rng, avoiding: avoiding)
        switch rng.below(6) {
        case 0: return "\(x) = \(Pools.number(&rng))"
        case 1: return "\(x) = \(stringLiteral(&rng))"
        case 2: return "print(\(x))"
        case 3: return "\(x) = \(expression(&rng, avoiding: avoiding))"
        case 4: return "\(x).append(\(expression(&rng, avoiding: avoiding)))"
        default: return "\(x) = \(Pools.functionName(&rng))(\(name(&rng, avoiding: avoiding)))"
        }
    }
}

extension String {
    var capitalizedFirst: String {
        prefix(1).uppercased() + dropFirst()
    }
}
