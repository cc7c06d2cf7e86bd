import XCTest
@testable import Circuits

final class PromptSidesTests: XCTestCase {
    func testSidesSplitByPromptParity() {
        // A prompts (even rows) answered with margin +4, B prompts (odd rows) with −4: a model that
        // always prefers the A side's answer.
        let sides = PromptSides(margins: [4, -4, 4, -4])
        XCTAssertEqual(sides.lossA, log1p(exp(-4)), accuracy: 1e-12)
        XCTAssertEqual(sides.lossB, 4 + log1p(exp(-4)), accuracy: 1e-12)
        XCTAssertEqual(sides.accuracy, 0.5)
    }

    func testMeanOfSidesIsTheTaskLoss() {
        let margins: [Float] = [0.3, -1.2, 2.5, 0.7, -0.1, 5]
        let sides = PromptSides(margins: margins)
        let whole = margins.map { log1p(exp(-Double($0))) }.reduce(0, +) / Double(margins.count)
        XCTAssertEqual((sides.lossA + sides.lossB) / 2, whole, accuracy: 1e-12)
        XCTAssertEqual(sides.loss, whole, accuracy: 1e-12)
        XCTAssertEqual(sides.accuracy, 4.0 / 6.0, accuracy: 1e-12)
    }

    func testLargeNegativeMarginDoesNotOverflow() {
        let sides = PromptSides(margins: [-1000, 1000])
        XCTAssertEqual(sides.lossA, 1000, accuracy: 1e-9)
        XCTAssertEqual(sides.lossB, 0, accuracy: 1e-9)
    }
}
