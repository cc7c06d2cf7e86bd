/// The pools that synthetic programs and task pairs draw identifiers, numbers and words from.
///
/// Names are ordinary Python identifiers (never keywords or builtins the programs call), so every
/// combination stays valid Python. Train and test task pairs draw from the same pools; they are
/// made disjoint by their full text (see `TaskGenerator`).
public enum Pools {
    public static let variables: [String] = [
        "a", "b", "c", "d", "i", "j", "k", "n", "x", "y", "z", "s", "v", "w", "item", "items",
        "value", "values", "total", "count", "result", "data", "name", "names", "key", "keys",
        "index", "line", "lines", "text", "word", "words", "node", "nodes", "size", "width",
        "height", "left", "right", "start", "end", "current", "prev", "first", "last", "score",
        "scores", "user", "users", "path", "paths", "row", "rows", "col", "cols", "level",
        "depth", "limit", "offset", "step", "seen", "queue", "stack", "buffer", "output", "parts",
        "token", "tokens", "label", "labels", "entry", "record", "message", "number", "numbers",
        "config", "options", "target", "source", "price", "amount", "counter", "matrix", "grid",
        "point", "points", "color", "colors", "answer", "temp", "flag", "state", "mode",
    ]

    /// Short names for swaps and loop indices, where real code uses them most.
    public static let shortVariables: [String] = [
        "a", "b", "c", "d", "i", "j", "k", "n", "x", "y", "z", "p", "q", "u", "v", "w", "m", "t",
        "lo", "hi", "left", "right", "first", "second", "prev", "curr", "old", "new", "src", "dst",
    ]

    /// Loop index names, shared by `for i in range(...)` and `for i, x in enumerate(...)`.
    public static let indices: [String] = ["i", "j", "k", "n", "idx", "index", "pos", "num", "row", "col"]

    public static let verbs: [String] = [
        "get", "put", "load", "save", "read", "write", "parse", "build", "make", "find", "check",
        "update", "process", "compute", "count", "format", "print", "collect", "merge", "split",
        "sort", "filter", "clean", "render", "send", "handle", "apply", "add", "remove", "scan",
    ]

    public static let nouns: [String] = [
        "items", "data", "name", "names", "user", "users", "file", "files", "line", "lines",
        "config", "value", "values", "result", "results", "total", "score", "path", "text",
        "words", "nodes", "tree", "graph", "list", "table", "row", "rows", "grid", "point",
        "record", "message", "token", "tokens", "label", "queue", "stack", "cache", "report",
    ]

    public static let classes: [String] = [
        "Node", "Tree", "Graph", "User", "Account", "Parser", "Reader", "Writer", "Config",
        "Point", "Vector", "Matrix", "Stack", "Queue", "Cache", "Record", "Table", "Report",
        "Counter", "Buffer", "Token", "Lexer", "Game", "Player", "Board", "Item", "Order",
        "Shape", "Circle", "Task", "Worker", "Event", "Logger", "Client", "Server", "Message",
    ]

    public static let words: [String] = [
        "hello", "world", "name", "value", "error", "done", "ok", "yes", "no", "file", "data",
        "start", "stop", "open", "close", "read", "write", "user", "admin", "test", "item",
        "list", "total", "count", "result", "line", "text", "empty", "full", "red", "green",
        "blue", "small", "large", "first", "last", "next", "left", "right", "up", "down",
        "alpha", "beta", "gamma", "apple", "banana", "cherry", "cat", "dog", "bird", "fish",
        "one", "two", "three", "four", "five", "key", "path", "node", "tree", "root", "found",
        "missing", "ready", "waiting", "failed", "passed", "saved", "loaded", "invalid", "unknown",
    ]

    public static let modules: [String] = [
        "os", "sys", "re", "math", "json", "random", "time", "string", "itertools", "functools",
        "collections", "pathlib", "typing", "logging", "datetime",
    ]

    /// Calls that take one argument and are always valid at parse time. `set` is left out (as is
    /// a `set_` verb) so that `set` in a program always means a new, empty set.
    public static let builtinCalls: [String] = [
        "len", "str", "int", "float", "abs", "sorted", "list", "tuple", "min", "max", "sum",
        "repr", "bool", "reversed", "print",
    ]

    public static let comparisons: [String] = ["==", "!=", "<", ">", "<=", ">="]

    public static func functionName(_ rng: inout SeededGenerator) -> String {
        rng.chance(0.15) ? rng.pick(verbs) : "\(rng.pick(verbs))_\(rng.pick(nouns))"
    }

    /// A small number, skewed the way code is: mostly 0 to 10, sometimes up to 1000.
    public static func number(_ rng: inout SeededGenerator) -> String {
        switch rng.below(10) {
        case 0..<6: return String(rng.below(11))
        case 6..<9: return String(rng.below(100))
        default: return String(rng.below(1001))
        }
    }

    /// One to four words, for string contents and comments.
    public static func phrase(_ rng: inout SeededGenerator, maxWords: Int = 4) -> String {
        (0..<rng.int(in: 1...maxWords)).map { _ in rng.pick(words) }.joined(separator: " ")
    }
}
