import Foundation
import XCTest
@testable import PythonCode

final class SyntheticPythonTests: XCTestCase {
    func testSameSeedSameProgramsDifferentSeedDifferent() {
        let a = Array(SyntheticPython(seed: 42).prefix(20))
        let b = Array(SyntheticPython(seed: 42).prefix(20))
        let c = Array(SyntheticPython(seed: 43).prefix(20))
        let heldOut = Array(SyntheticPython(seed: 42, stream: 1).prefix(20))
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, c)
        XCTAssertNotEqual(a, heldOut)
        XCTAssertEqual(Set(a).count, 20, "programs repeat within a stream")
    }

    func testStreamIsUnboundedAndTextReachesRequestedSize() {
        var g = SyntheticPython(seed: 1)
        let text = g.text(bytes: 200_000)
        XCTAssertGreaterThanOrEqual(text.utf8.count, 200_000)
        XCTAssertNotNil(g.next())
    }

    /// The constructs the tasks test must each be common, so a small model can learn them.
    func testConstructsTheTasksNeedAreFrequent() {
        var g = SyntheticPython(seed: 3)
        let text = g.text(bytes: 500_000)
        func count(_ s: String) -> Int { text.components(separatedBy: s).count - 1 }
        let perMB = { (s: String) in Double(count(s)) * 1e6 / Double(text.utf8.count) }
        let required: [(String, Double)] = [
            (" = set()\n", 300), (".add(", 300), (" = \"\"\n", 100), (" = ''\n", 100), (" += ", 300),
            ("while True:\n", 200), ("return True\n", 300), ("return True\n\n", 50),
            (" in enumerate(", 200), (" in range(", 200), (" = f\"{", 200), (" = str(", 200),
            ("]]\n", 200), ("]\n", 500), ("}\n", 300), ("\"\n", 500), ("'\n", 500),
            (" == ", 500), ("current = set()", 50), ("current = ", 100), ("# ", 200), ("def ", 500), ("class ", 50),
        ]
        for (construct, minimum) in required {
            XCTAssertGreaterThan(perMB(construct), minimum, "\(construct.debugDescription) is too rare")
        }
        let swaps = try! NSRegularExpression(pattern: "\\b(\\w+), (\\w+) = \\2, \\1\\b")
        XCTAssertGreaterThan(swaps.numberOfMatches(in: text, range: NSRange(text.startIndex..., in: text)), 100)
    }

    /// Every program must be valid Python 3: parse 1,200 of them with the interpreter's `ast`.
    func testProgramsParseWithPython() throws {
        guard let python = ["/usr/bin/python3", "/usr/local/bin/python3", "/opt/homebrew/bin/python3"]
            .first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("python3 not found: generated programs are not checked against the Python parser")
        }
        var g = SyntheticPython(seed: 2024)
        let programs = (0..<1200).map { _ in g.program() }
        let separator = "\u{1E}"
        let script = """
        import ast, sys
        bad = 0
        for i, p in enumerate(sys.stdin.read().split('\(separator)')):
            try:
                ast.parse(p)
            except SyntaxError as e:
                bad += 1
                if bad <= 3: print(f'program {i}: {e}')
        print(f'bad {bad}')
        """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", script]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data(programs.joined(separator: separator).utf8))
        try input.fileHandleForWriting.close()
        let result = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        XCTAssertTrue(result.hasSuffix("bad 0\n"), result)
    }
}
