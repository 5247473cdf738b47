import Foundation

/// CPU time of server processes, from `/proc/<pid>/stat`: a figure that moves far less with the machine's
/// load than throughput does. A process is counted with its descendants (a gateway's processor children,
/// PostgreSQL's backends), and with the children it has reaped (`cutime`, `cstime`: backends that exited).
struct CPUMeter {
    /// A server process to measure, by name.
    struct Server {
        var name: String
        var pids: () -> [Int32]
    }

    /// CPU seconds by server at one instant.
    struct Snapshot {
        var seconds: [String: Double]

        /// CPU seconds per GB (10^9 bytes) moved between `earlier` and this snapshot, by server, in the
        /// servers' order.
        func perGB(since earlier: Snapshot, bytes: Double, order: [String]) -> [(String, Double)] {
            order.compactMap { name in
                guard let now = seconds[name], let then = earlier.seconds[name], bytes > 0 else { return nil }
                return (name, (now - then) / (bytes / 1e9))
            }
        }
    }

    var servers: [Server]

    static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    func snapshot() -> Snapshot {
        let table = ProcessTable.read()
        var seconds: [String: Double] = [:]
        for server in servers {
            let roots = server.pids()
            guard !roots.isEmpty else { continue }
            seconds[server.name] = table.cpuSeconds(of: roots)
        }
        return Snapshot(seconds: seconds)
    }

    /// One line per server: `name 1.23 CPU s/GB`.
    static func describe(_ figures: [(String, Double)]) -> String {
        figures.map { "\($0.0) \(format($0.1, 2))" }.joined(separator: ", ") + " CPU s/GB"
    }
}

/// Every process's parent and CPU ticks, read once.
struct ProcessTable {
    struct Entry {
        var parent: Int32
        /// utime + stime
        var own: Double
        /// cutime + cstime: children that exited and were waited for
        var reaped: Double
    }

    var entries: [Int32: Entry]

    static func read() -> ProcessTable {
        var entries: [Int32: Entry] = [:]
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for name in names {
            guard let pid = Int32(name), let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            // after "pid (comm) ": state ppid ... utime(14) stime(15) cutime(16) cstime(17), 1-based over the line
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 15, let parent = Int32(fields[1]) else { continue }
            let value = { (index: Int) in Double(fields[index]) ?? 0 }
            entries[pid] = Entry(parent: parent, own: value(11) + value(12), reaped: value(13) + value(14))
        }
        return ProcessTable(entries: entries)
    }

    /// CPU seconds of the processes `roots` and all their live descendants, with what they reaped.
    func cpuSeconds(of roots: [Int32]) -> Double {
        var children: [Int32: [Int32]] = [:]
        for (pid, entry) in entries { children[entry.parent, default: []].append(pid) }
        var seen = Set<Int32>()
        var stack = roots
        var ticks = 0.0
        while let pid = stack.popLast() {
            guard seen.insert(pid).inserted, let entry = entries[pid] else { continue }
            ticks += entry.own + entry.reaped
            stack += children[pid] ?? []
        }
        return ticks / CPUMeter.ticksPerSecond
    }
}

/// Processes of the local stack by executable name (`pgrep -x`); the oldest one only when `oldest` (a
/// PostgreSQL postmaster, whose backends are its descendants).
func pids(named name: String, oldest: Bool = false) -> [Int32] {
    let output = (try? runProcess(["pgrep", oldest ? "-ox" : "-x", name])) ?? ""
    return output.split(separator: "\n").compactMap { Int32($0) }
}

/// The local stack's daemons (`Deploy/local/stack`), by the pid files under `MEDIAGW_STACK_DIR`.
enum StackProcess: String {
    case osd, pg, rgw, mon

    var pids: [Int32] {
        let directory = ProcessInfo.processInfo.environment["MEDIAGW_STACK_DIR"] ?? ".stack"
        let text = (try? String(contentsOfFile: "\(directory)/pids/\(rawValue).pid", encoding: .utf8)) ?? ""
        return text.split(whereSeparator: \.isNewline).compactMap { Int32($0.trimmingCharacters(in: .whitespaces)) }
    }

    var server: CPUMeter.Server {
        let process = self
        let name =
            switch self {
            case .osd: "OSD"
            case .pg: "PostgreSQL"
            case .rgw: "radosgw"
            case .mon: "mon"
            }
        return CPUMeter.Server(name: name) { process.pids }
    }
}
