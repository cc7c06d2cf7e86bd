import Foundation
import XCTest
@testable import Sweep

/// The command line's errors, as a user meets them: the built binary, its exit status and its words.
final class CommandLineTests: ClusterTestCase {
    /// Runs `circuitry ARGUMENTS` to its end (killed after `timeout` seconds); stdout and stderr together.
    /// `environment` replaces the inherited one where given.
    private func circuitry(_ arguments: [String], timeout: Double = 60,
                           environment: [String: String]? = nil) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.currentDirectoryURL = directory
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let killer = DispatchWorkItem { if process.isRunning { process.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: killer)
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        killer.cancel()
        return (process.terminationStatus, output)
    }

    func testRetryWithoutFailedPrintsItsOwnUsage() throws {
        let (status, output) = try circuitry(["retry", directory.path])
        XCTAssertEqual(status, 64, output)
        XCTAssertTrue(output.contains("say which shards: --failed"), output)
        XCTAssertTrue(output.contains("Usage: circuitry retry <run-dir> [--failed]"), output)
    }

    func testExtendAddsSeedsFromTheCommandLineAndRefusesChangedSettings() throws {
        let sweep = directory.appendingPathComponent("s.yaml")
        try "name: s\ngrid: {density: [1.0], d_model: [32], task: [var_swap]}\n".write(to: sweep, atomically: true, encoding: .utf8)
        let run = directory.appendingPathComponent("run")
        try RunDirectory(run).create(spec: try SweepSpec.load(from: sweep))
        let grown = try circuitry(["extend", run.path, sweep.path, "--set", "grid.seed=[0, 1]"])
        XCTAssertEqual(grown.status, 0, grown.output)
        XCTAssertTrue(grown.output.contains("2 shards added and pending"), grown.output)
        let changed = try circuitry(["extend", run.path, sweep.path, "--set", "grid.seed=[0, 1]", "--set", "train.steps=7"])
        XCTAssertNotEqual(changed.status, 0, changed.output)
        XCTAssertTrue(changed.output.contains("would alter shard train/d1-w32-a1-s0 (train)"), changed.output)
        XCTAssertEqual(try RunDirectory(run).openStore(readOnly: true).read { try $0.shardRecords() }.count, 5)
    }

    func testRetryTakesNewPruningSettingsFromTheSweepFileAndRefusesAnyOtherChange() throws {
        let sweep = directory.appendingPathComponent("s.yaml")
        try "name: s\ngrid: {density: [1.0], d_model: [32], task: [var_swap]}\n".write(to: sweep, atomically: true, encoding: .utf8)
        let run = directory.appendingPathComponent("run")
        try RunDirectory(run).create(spec: try SweepSpec.load(from: sweep))
        let alone = try circuitry(["retry", run.path, "--failed", "--set", "prune.lambdas=[1e-4]"])
        XCTAssertEqual(alone.status, 64, alone.output)
        XCTAssertTrue(alone.output.contains("--set needs --sweep-file"), alone.output)
        let other = try circuitry(["retry", run.path, "--pruning", "--sweep-file", sweep.path, "--set", "train.steps=7"])
        XCTAssertNotEqual(other.status, 0, other.output)
        XCTAssertTrue(other.output.contains("would alter shard train/d1-w32-a1-s0 (train)"), other.output)
        let finer = try circuitry(["retry", run.path, "--pruning", "--sweep-file", sweep.path, "--set", "prune.lambdas=[1e-4, 2e-4]"])
        XCTAssertEqual(finer.status, 0, finer.output)
        XCTAssertTrue(finer.output.contains("1 prune shard takes the pruning settings of"), finer.output)
        let stored = try RunDirectory(run).openStore(readOnly: true).read { try $0.sweepSpec() }
        XCTAssertEqual(stored.prune.lambdas, [1e-4, 2e-4])
        XCTAssertEqual(stored.train, try SweepSpec.load(from: sweep).train)
    }

    func testRunGivenADirectoryNamesTheMistake() throws {
        let (status, output) = try circuitry(["run", directory.path])
        XCTAssertEqual(status, 64, output)
        XCTAssertTrue(output.contains("\(directory.path) is a directory, not a sweep file"), output)
        XCTAssertTrue(output.contains("circuitry resume \(directory.path)"), output)
        XCTAssertFalse(output.contains("NSCocoaErrorDomain"), output)
        let missing = try circuitry(["run", directory.appendingPathComponent("none.yaml").path])
        XCTAssertTrue(missing.output.contains("no sweep file at"), missing.output)
    }

    func testRunAndResumeShareTheirOptionsAndPrintEachDefaultOnce() throws {
        for command in ["run", "resume"] {
            let help = try circuitry([command, "--help"])
            XCTAssertEqual(help.status, 0, help.output)
            XCTAssertTrue(help.output.contains("--slots <slots>"), help.output)
            XCTAssertTrue(help.output.contains("(default: one per"), help.output)
            XCTAssertFalse(help.output.contains("(default: \(ProcessInfo.processInfo.activeProcessorCount))"), help.output)
            XCTAssertFalse(help.output.contains("--workers"), help.output)
        }
        let sweep = directory.appendingPathComponent("s.yaml")
        try "grid: {density: [1.0], d_model: [32], task: [var_swap]}\n".write(to: sweep, atomically: true, encoding: .utf8)
        let zero = try circuitry(["run", sweep.path, "--slots", "0", "--run-dir", directory.appendingPathComponent("r").path])
        XCTAssertEqual(zero.status, 64, zero.output)
        XCTAssertTrue(zero.output.contains("--slots must be at least 1, got 0"), zero.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.appendingPathComponent("r").path))
    }

    func testCoordinatorKeysGoTogetherAndResumeTakesNoNewLayout() throws {
        let half = try circuitry(["coordinator", "--key", "k", "--bind", "tcp://127.0.0.1:5999", "x.yaml"])
        XCTAssertEqual(half.status, 64, half.output)
        XCTAssertTrue(half.output.contains("--key and --authorized-keys go together"), half.output)
        let worker = try circuitry(["worker", "--connect", "tcp://127.0.0.1:5999", "--server-key", "k"])
        XCTAssertEqual(worker.status, 64, worker.output)
        XCTAssertTrue(worker.output.contains("--key and --server-key go together"), worker.output)
        let resumed = try circuitry(["coordinator", "--resume", directory.path, "--set", "train.steps=1",
                                     "--bind", "tcp://127.0.0.1:5999"])
        XCTAssertNotEqual(resumed.status, 0, resumed.output)
        XCTAssertTrue(resumed.output.contains("a resumed sweep keeps its own"), resumed.output)
    }

    func testTrainChecksTheOutputDirectoryBeforeTraining() throws {
        let started = Date()
        let (status, output) = try circuitry(["train", "--out", "/missing/dir/x.safetensors", "--steps", "100000"])
        XCTAssertEqual(status, 64, output)
        XCTAssertTrue(output.contains("--out /missing/dir/x.safetensors: the directory /missing/dir does not exist"), output)
        XCTAssertFalse(output.contains("step "), output)
        XCTAssertLessThan(Date().timeIntervalSince(started), 20)
    }

    func testTrainWithoutDataSaysItTrainsOnRandomTokens() throws {
        let out = directory.appendingPathComponent("random.safetensors").path
        let (status, output) = try circuitry(["train", "--steps", "1", "--d-model", "16", "--vocab", "64", "--context", "8",
                                              "--batch", "1", "--out", out])
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("no --corpus or --tokens: training on seeded random tokens"), output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out))
    }

    func testWorkerEndpointWithoutTransportIsRefused() throws {
        let (status, output) = try circuitry(["worker", "--connect", "127.0.0.1:5598"])
        XCTAssertEqual(status, 64, output)
        XCTAssertTrue(output.contains("--connect 127.0.0.1:5598 is not an endpoint: it needs a transport, e.g. tcp://127.0.0.1:5598"), output)
        let coordinator = try circuitry(["coordinator", "--bind", "0.0.0.0:5555"])
        XCTAssertTrue(coordinator.output.contains("e.g. tcp://0.0.0.0:5555"), coordinator.output)
    }

    func testWorkerWithNoCoordinatorSaysItIsWaiting() throws {
        let port = try freePort()
        let (_, output) = try circuitry(["worker", "--connect", "tcp://127.0.0.1:\(port)", "--slots", "1", "--name", "lonely",
                                         "--work-dir", directory.appendingPathComponent("work").path,
                                         "--cache", directory.appendingPathComponent("cache").path], timeout: 3)
        XCTAssertTrue(output.contains("worker lonely: waiting for the coordinator at tcp://127.0.0.1:\(port) (1 slot, OpenBLAS kernel "), output)
    }

    /// OpenBLAS's kernel decides the rounding of every product, so each command restarts under the
    /// pinned one unless the user chose a kernel; a model trained either way has the same bits.
    func testCommandsRunUnderThePinnedBLASKernelUnlessOneIsChosen() throws {
        #if arch(x86_64)
        let flags = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        try XCTSkipUnless(flags.contains(" avx2") && flags.contains(" fma"), "the pinned kernel needs AVX2 and FMA")
        var unset = ProcessInfo.processInfo.environment
        unset["OPENBLAS_CORETYPE"] = nil
        func kernel(_ environment: [String: String]) throws -> String {
            let bench = try circuitry(["bench", "train", "--json", "--d-model", "16", "--batch", "2", "--context", "8",
                                       "--vocab", "32", "--steps", "6", "--threads", "1"], environment: environment)
            XCTAssertEqual(bench.status, 0, bench.output)
            let line = try XCTUnwrap(bench.output.split(separator: "\n").last(where: { $0.hasPrefix("{") }), bench.output)
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return try XCTUnwrap(object["blas_kernel"] as? String, bench.output)
        }
        XCTAssertEqual(try kernel(unset), "Haswell")
        var chosen = unset
        chosen["OPENBLAS_CORETYPE"] = "Sandybridge"
        XCTAssertEqual(try kernel(chosen), "Sandybridge")

        func train(_ name: String, _ environment: [String: String]) throws -> Data {
            let out = directory.appendingPathComponent("\(name).safetensors")
            let run = try circuitry(["train", "--corpus", "synthetic", "--train-token-count", "20000", "--held-out-token-count", "2000", "--d-model", "16",
                                     "--steps", "12", "--batch", "4", "--context", "16", "--threads", "1", "--out", out.path],
                                    environment: environment)
            XCTAssertEqual(run.status, 0, run.output)
            return try Data(contentsOf: out)
        }
        var pinned = unset
        pinned["OPENBLAS_CORETYPE"] = "Haswell"
        XCTAssertEqual(try train("unset", unset), try train("pinned", pinned))
        #else
        throw XCTSkip("the kernel is pinned on x86-64 only")
        #endif
    }

    func testVersion() throws {
        let (status, output) = try circuitry(["--version"])
        XCTAssertEqual(status, 0)
        XCTAssertTrue(output.hasPrefix("circuitry "), output)
    }
}
