// swift-tools-version:6.0
import PackageDescription

// Hot loops run with bounds checks off in release builds.
let fast: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]

let package = Package(
    name: "circuitry",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "circuitry", targets: ["circuitry"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        .systemLibrary(name: "CZeroMQ", pkgConfig: "libzmq", providers: [.apt(["libzmq3-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),

        // The engine is optimised in debug builds too: the tests of every module above it run its hot loops.
        .target(name: "SparseGPT", dependencies: ["COpenBLAS", .product(name: "Yams", package: "Yams")],
                swiftSettings: fast + [.unsafeFlags(["-O"], .when(configuration: .debug))]),
        .target(name: "PythonCode", swiftSettings: fast),
        .target(name: "Circuits", dependencies: ["SparseGPT"], swiftSettings: fast),
        .target(name: "ZeroMQ", dependencies: ["CZeroMQ"]),
        .target(name: "Sweep", dependencies: [
            "Circuits", "SparseGPT", "PythonCode", "ZeroMQ",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "Yams", package: "Yams"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .executableTarget(name: "circuitry", dependencies: [
            "Sweep", "Circuits", "SparseGPT", "PythonCode",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // One test target per library; each is added with its library.
        .testTarget(name: "SparseGPTTests", dependencies: ["SparseGPT"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ZeroMQTests", dependencies: ["ZeroMQ"]),
        .testTarget(name: "PythonCodeTests", dependencies: ["PythonCode"], resources: [.copy("Fixtures")]),
        .testTarget(name: "SweepTests", dependencies: ["Sweep", "ZeroMQ", "Circuits", "circuitry"]),
        .testTarget(name: "CircuitsTests", dependencies: ["Circuits", "SparseGPT"], resources: [.copy("Fixtures")]),
    ],
    swiftLanguageModes: [.v5]
)
