import COpenBLAS
import Foundation

/// OpenBLAS chooses its sgemm kernel for the CPU it loads on, and the kernels round differently:
/// the same seed trained on an AVX-512 machine and on an AVX2 machine gives different bits, and
/// then different circuits (the quick sweep's edges differed by up to 11% between two machines).
/// Every x86-64 machine with AVX2 and FMA runs the Haswell kernel, so pinning it makes a sweep's
/// results the same whichever machines its shards land on. OpenBLAS reads the choice from the
/// environment when the library loads, before any Swift code runs, hence the re-execution.
public enum BLASKernel {
    /// The kernel every run pins where the CPU can run it.
    public static let pinned = "Haswell"
    /// OpenBLAS's variable; a value set by the user is kept, whatever it is.
    public static let environmentVariable = "OPENBLAS_CORETYPE"

    /// The kernel OpenBLAS runs in this process.
    public static var current: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name).trimmingCharacters(in: .whitespaces)
    }

    /// Whether this process should start again with the pinned kernel: on x86-64 with AVX2 and FMA
    /// (`cpuFlags`, from /proc/cpuinfo, read only when the rest does not decide), when the user did
    /// not choose a kernel and OpenBLAS chose another one. Every shard process starts with the
    /// variable already set, so it decides without reading the file.
    static func needsPinning(environment: [String: String], cpuFlags: @autoclosure () -> Set<String>, current: String) -> Bool {
        #if arch(x86_64)
        return environment[environmentVariable] == nil && current.lowercased() != pinned.lowercased()
            && cpuFlags().isSuperset(of: ["avx2", "fma"])
        #else
        return false
        #endif
    }

    /// The flags of the first processor in /proc/cpuinfo (empty where there is none).
    static func cpuFlags() -> Set<String> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }

    /// Starts this program again, with the same arguments, under the pinned kernel when
    /// `needsPinning`; otherwise returns. If the new start fails, the run goes on with OpenBLAS's
    /// own choice, and says so: its results are then the same only on machines of that kind.
    public static func pinByRestarting() {
        let environment = ProcessInfo.processInfo.environment
        guard needsPinning(environment: environment, cpuFlags: cpuFlags(), current: current) else { return }
        setenv(environmentVariable, pinned, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        let reason = String(cString: strerror(errno))
        unsetenv(environmentVariable)
        FileHandle.standardError.write(Data("warning: could not restart with OpenBLAS's \(pinned) kernel (\(reason)); running with \(current), so results match only machines that choose it\n".utf8))
    }
}
