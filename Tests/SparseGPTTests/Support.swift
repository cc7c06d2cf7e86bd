import Foundation
import XCTest
@testable import SparseGPT

/// Path of a fixture file (the golden tensors copied from the reference).
func fixture(_ name: String) -> String {
    Bundle.module.url(forResource: "Fixtures/" + name, withExtension: nil)!.path
}

/// Asserts |a - b| <= atol + rtol |b| elementwise and reports the worst entry.
func assertClose(_ actual: [Float], _ expected: [Float], rtol: Float, atol: Float, _ what: String,
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, "\(what): count", file: file, line: line)
    guard actual.count == expected.count else { return }
    var worst = -Float.infinity, worstIndex = -1
    for i in 0..<actual.count {
        let excess = abs(actual[i] - expected[i]) - (atol + rtol * abs(expected[i]))
        if !(excess <= worst) || excess.isNaN { worst = excess; worstIndex = i }
    }
    if worstIndex >= 0 && (worst > 0 || worst.isNaN) {
        XCTFail("\(what): entry \(worstIndex) is \(actual[worstIndex]), expected \(expected[worstIndex]) (rtol \(rtol), atol \(atol))",
                file: file, line: line)
    }
}

/// A small random configuration for fast tests.
func tinyConfig(afrac: Double = 1, layers: Int = 1, dModel: Int = 32) -> ModelConfig {
    ModelConfig(vocab: 23, context: 8, dModel: dModel, nLayer: layers, dHead: 16, afrac: afrac)
}
