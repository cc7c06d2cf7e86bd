import Foundation
import XCTest
@testable import PythonCode

final class TaskTests: XCTestCase {
    let tok = TokenizerTests.syntheticTokenizer

    func testThereAreTheTenTasksOfTheSpec() {
        XCTAssertEqual(PythonTask.all.map(\.name), [
            "single_double_quote", "bracket_counting", "set_or_string", "set_or_string_fixedvarname",
            "while_return_true", "bracket_brace", "fstring_brace", "var_swap", "if_equals", "enumerate_range",
        ])
        XCTAssertThrowsError(try PythonTask.named("nope")) { e in
            XCTAssertTrue("\(e)".contains("unknown task 'nope'"))
        }
    }

    func testPairsHaveTheOpenerPairsLayoutAndFitTheContext() throws {
        for task in PythonTask.all {
            let s = try task.makePairs(tokenizer: tok, seed: 1, trainPairs: 200, testPairs: 60, maxLength: 64)
            for (split, n) in [(s.train, 200), (s.test, 60)] {
                XCTAssertEqual(split.pairCount, n)
                XCTAssertEqual(split.prompts.count, 2 * n * 64)
                XCTAssertEqual(split.lengths.count, 2 * n)
                XCTAssertEqual(split.candidates.count, 4 * n)
                for i in 0..<n {
                    let pair = split.pairs[i]
                    let (a, b) = (2 * i, 2 * i + 1)
                    XCTAssertTrue((1...64).contains(split.lengths[a]) && (1...64).contains(split.lengths[b]))
                    XCTAssertEqual(tok.decodeString(split.prompt(a).map(Int.init)), pair.promptA)
                    XCTAssertEqual(tok.decodeString(split.prompt(b).map(Int.init)), pair.promptB)
                    XCTAssertTrue(split.prompts[(a * 64 + Int(split.lengths[a]))..<((a + 1) * 64)].allSatisfy { $0 == 0 })
                    // A: [target, alt]; B: [alt, target]; candidate = first token of the continuation.
                    XCTAssertEqual(Int(split.candidates[2 * a]), tok.encode(pair.target).first)
                    XCTAssertEqual(Int(split.candidates[2 * a + 1]), tok.encode(pair.alt).first)
                    XCTAssertEqual(split.candidates[2 * b], split.candidates[2 * a + 1])
                    XCTAssertEqual(split.candidates[2 * b + 1], split.candidates[2 * a])
                    XCTAssertNotEqual(split.candidates[2 * a], split.candidates[2 * a + 1])
                    XCTAssertNotEqual(pair.promptA, pair.promptB)
                }
            }
        }
    }

    func testDeterministicDisjointAndVaried() throws {
        for task in PythonTask.all {
            let s1 = try task.makePairs(tokenizer: tok, seed: 7, trainPairs: 300, testPairs: 100)
            let s2 = try task.makePairs(tokenizer: tok, seed: 7, trainPairs: 300, testPairs: 100)
            let s3 = try task.makePairs(tokenizer: tok, seed: 8, trainPairs: 300, testPairs: 100)
            XCTAssertEqual(s1.train.pairs, s2.train.pairs, task.name)
            XCTAssertEqual(s1.test.prompts, s2.test.prompts, task.name)
            XCTAssertNotEqual(s1.train.pairs, s3.train.pairs, task.name)
            let train = Set(s1.train.pairs.map(\.promptA)), test = Set(s1.test.pairs.map(\.promptA))
            XCTAssertEqual(train.count, 300, "\(task.name): duplicate train pairs")
            XCTAssertEqual(test.count, 100, "\(task.name): duplicate test pairs")
            XCTAssertTrue(train.isDisjoint(with: test), "\(task.name): train and test overlap")
            XCTAssertGreaterThan(Set(s1.train.lengths).count, 3, "\(task.name): prompts barely vary")
        }
    }

    func testSpecExamplesArePromptEndings() throws {
        var rng = SeededGenerator(seed: 3)
        let endings: [String: (String, String)] = [
            "single_double_quote": (" = \"", " = '"), "bracket_counting": (" = [[", " = ["),
            "set_or_string": ("set()\n", ""), "while_return_true": ("while True", "return True"),
            "bracket_brace": (" = [", " = {"), "fstring_brace": (" = f", " = str("),
            "if_equals": ("if ", ""), "enumerate_range": (" in", " in"),
        ]
        for task in PythonTask.all {
            let pair = task.samplePair(&rng)
            if let (a, b) = endings[task.name] {
                XCTAssertTrue(a.isEmpty || pair.promptA.contains(a), "\(task.name): \(pair.promptA)")
                XCTAssertTrue(b.isEmpty || pair.promptB.contains(b), "\(task.name): \(pair.promptB)")
            }
        }
        let swap = PythonTask.all.first { $0.name == "var_swap" }!.samplePair(&rng)
        XCTAssertTrue(swap.promptA.hasSuffix(",") && swap.target.hasPrefix(" "))
        let fixed = try PythonTask.named("set_or_string_fixedvarname").samplePair(&rng)
        XCTAssertTrue(fixed.promptA.hasSuffix("current") && fixed.promptA.contains("current = set()"))
    }

    func testCoincidingCandidatesAreRejectedNamingTaskAndTokens() throws {
        let bytesOnly = try BPETokenizer(merges: [])
        XCTAssertThrowsError(try PythonTask.named("if_equals").makePairs(tokenizer: bytesOnly, seed: 0)) { e in
            XCTAssertEqual(e as? TaskError, .candidatesCoincide(task: "if_equals", target: " ==", alt: " =", token: " "))
            XCTAssertTrue("\(e)".contains("if_equals") && "\(e)".contains("\" ==\""))
        }
        XCTAssertNoThrow(try PythonTask.named("bracket_brace").validate(tokenizer: bytesOnly))
    }

    func testPromptsThatCannotFitAreAClearError() throws {
        XCTAssertThrowsError(try PythonTask.named("set_or_string").makePairs(tokenizer: tok, seed: 0, trainPairs: 10, testPairs: 0, maxLength: 4)) { e in
            XCTAssertTrue("\(e)".contains("set_or_string") && "\(e)".contains("within 4 tokens"), "\(e)")
        }
    }
}
