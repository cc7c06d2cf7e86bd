import Foundation
import XCTest
@testable import Sweep

/// The README's sweep file example must stay a valid sweep file.
final class ReadmeTests: XCTestCase {
    func testTheReadmeSweepExampleParses() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let blocks = readme.components(separatedBy: "```yaml\n").dropFirst().map { $0.components(separatedBy: "```")[0] }
        XCTAssertFalse(blocks.isEmpty, "README.md has no yaml block")
        for block in blocks {
            let spec = try SweepSpec.parse(block, file: "README.md")
            XCTAssertFalse(plan(spec).isEmpty)
        }
    }
}
