import Foundation
import XCTest
@testable import Sweep

/// `--set KEY=VALUE` on `circuitry run` and `circuitry coordinator`.
final class SweepFileOverrideTests: XCTestCase {
    private let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    private let base = """
        name: base
        grid: {density: [1.0], d_model: [64], task: [if_equals]}
        data:
          corpus: synthetic
          vocab_size: 512
        train:
          steps: 100
        """

    private func parse(_ overrides: String...) throws -> SweepSpec {
        try SweepSpec.parse(base, file: "base.yaml", overrides: overrides.map(SweepOverride.init))
    }

    private func error(_ overrides: String...) -> SweepFileError? {
        do {
            _ = try SweepSpec.parse(base, file: "base.yaml", overrides: overrides.map(SweepOverride.init))
            return nil
        } catch let e as SweepFileError {
            return e
        } catch {
            XCTFail("unexpected \(error)")
            return nil
        }
    }

    func testOverridesReplaceAndAddKeys() throws {
        let spec = try parse("data.corpus=/usr/lib/python3.11", "train.steps=3000", "model.context=32",
                             "train.learning_rate_by_width.64=0.02", "grid.d_model=[64, 128]", "name=renamed")
        XCTAssertEqual(spec.data.corpus, "/usr/lib/python3.11")
        XCTAssertEqual(spec.data.vocabSize, 512, "keys not overridden keep the file's values")
        XCTAssertEqual(spec.train.steps, 3000)
        XCTAssertEqual(spec.model.context, 32, "a section the file lacks is added")
        XCTAssertEqual(spec.train.learningRateByWidth[64], 0.02)
        XCTAssertEqual(spec.grid.dModel, [64, 128])
        XCTAssertEqual(spec.name, "renamed")
        XCTAssertEqual(try parse("train.steps=5", "train.steps=7").train.steps, 7, "the last of repeated overrides wins")
        XCTAssertEqual(try parse("data.corpus=a=b").data.corpus, "a=b", "only the first = separates key and value")
        XCTAssertEqual(try parse(), try SweepSpec.parse(base, file: "base.yaml"))
    }

    func testBadOverridesGetTheFilesErrorsNamingTheKey() {
        XCTAssertEqual(error("train.steps=many"),
                       SweepFileError(file: "--set train.steps=many", line: nil, key: "train.steps",
                                      message: "expected an integer, found 'many'"))
        XCTAssertEqual(error("data.vocab_size=100")?.key, "data.vocab_size")
        XCTAssertEqual(error("data.vocab_size=100")?.message, "must be at least 257, found 100")
        XCTAssertEqual(error("data.corpuss=/x"),
                       SweepFileError(file: "--set data.corpuss=/x", line: nil, key: "data.corpuss", message: "unknown key"))
        XCTAssertEqual(error("nonsense=1")?.description, "--set nonsense=1: nonsense: unknown key")
        XCTAssertEqual(error("grid.task=[if_equal]")?.file, "--set grid.task=[if_equal]")
        XCTAssertEqual(error("data.corpus=[a, b]")?.message, "expected a string")
        XCTAssertEqual(error("data.corpus.path=/x")?.message, "is not a mapping, so it has no key path")
        XCTAssertEqual(error("data=3")?.message, "expected a mapping of keys to values")
        XCTAssertEqual(error("data.corpus=")?.message, "give a value after the =")
        XCTAssertEqual(error("grid.d_model=[64, 128")?.message, "the value is not valid YAML")
        XCTAssertThrowsError(try SweepOverride("data.corpus")) { e in
            XCTAssertTrue("\(e)".contains("expected KEY=VALUE"), "\(e)")
        }
        XCTAssertThrowsError(try SweepOverride("data..corpus=x")) { e in
            XCTAssertTrue("\(e)".contains("dotted key"), "\(e)")
        }
        XCTAssertThrowsError(try SweepOverride("=x"))
        // Errors of keys the override did not touch still point into the file.
        do {
            _ = try SweepSpec.parse(base + "\n  batch_size: 0", file: "base.yaml", overrides: [SweepOverride("data.corpus=/x")])
        } catch let e as SweepFileError {
            XCTAssertEqual(e.file, "base.yaml")
            XCTAssertEqual(e.key, "train.batch_size")
            XCTAssertNotNil(e.line)
        } catch {
            XCTFail("unexpected \(error)")
        }
    }

    func testRealCodeSweepFileIsValidAndTakesItsCorpusFromTheCommandLine() throws {
        let url = repository.appendingPathComponent("sweeps/python-code.yaml")
        let spec = try SweepSpec.load(from: url)
        XCTAssertEqual(spec.name, "python-code")
        XCTAssertNotEqual(spec.data.corpus, "synthetic")
        XCTAssertEqual(spec.data.vocabSize, 1024, "the vocabulary the README's real-code measurements chose")
        XCTAssertEqual(spec.train.steps, 20_000)
        XCTAssertEqual(Set(spec.modelPoints.filter { $0.density == 1 }.map(\.dModel)), [32, 48, 64, 128],
                       "the dense frontier the README's real-code headline is measured on")
        XCTAssertTrue(spec.modelPoints.filter { $0.density == 1 }.allSatisfy { $0.afrac == 1 }, "dense baselines have afrac 1")
        XCTAssertEqual(spec.modelPoints.filter { $0.density < 1 }.map(\.dModel), [256],
                       "one sparse model, density 1/16 at d_model 256, the width lever's measured point")
        XCTAssertEqual(Set(spec.grid.task), Set(knownTasks))
        let elsewhere = try SweepSpec.load(from: url, overrides: [SweepOverride("data.corpus=/srv/code")])
        XCTAssertEqual(elsewhere.data.corpus, "/srv/code")
        var expected = spec
        expected.data.corpus = "/srv/code"
        XCTAssertEqual(elsewhere, expected, "the override changes that key only")
    }
}
