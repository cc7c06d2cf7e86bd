import XCTest
@testable import SparseGPT

final class BLASKernelTests: XCTestCase {
    func testPinsOnlyWhereTheCPURunsTheKernelAndTheUserChoseNone() {
        let avx2: Set<String> = ["sse2", "avx", "avx2", "fma", "avx512f"]
        #if arch(x86_64)
        XCTAssertTrue(BLASKernel.needsPinning(environment: [:], cpuFlags: avx2, current: "Cooperlake"))
        #else
        XCTAssertFalse(BLASKernel.needsPinning(environment: [:], cpuFlags: avx2, current: "Cooperlake"))
        #endif
        XCTAssertFalse(BLASKernel.needsPinning(environment: ["OPENBLAS_CORETYPE": "SkylakeX"], cpuFlags: avx2, current: "SkylakeX"))
        XCTAssertFalse(BLASKernel.needsPinning(environment: [:], cpuFlags: ["sse2", "avx"], current: "Sandybridge"))
        XCTAssertFalse(BLASKernel.needsPinning(environment: [:], cpuFlags: avx2, current: "Haswell"))
    }
}
