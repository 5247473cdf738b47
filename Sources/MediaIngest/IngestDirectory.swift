import Crypto
import Foundation
import MediaCore

/// Directory mode: the files under a directory, and a context id per file.
public enum IngestDirectory {
    /// Regular files under `root`, recursively, as paths relative to it, sorted; hidden files and
    /// directories (a leading dot) are skipped.
    public static func files(under root: String) -> [String] {
        let rootURL = URL(fileURLWithPath: root)
        guard
            let enumerator = FileManager.default.enumerator(
                at: rootURL,
                includingPropertiesForKeys: [],
                options: [.skipsHiddenFiles]
            )
        else { return [] }
        var files: [String] = []
        let prefix = rootURL.standardizedFileURL.path + "/"
        for case let url as URL in enumerator {
            // lstat, not `resourceValues`: Foundation reads every file's owner and group names (the user and
            // group databases, twice per file) to answer it
            var info = stat()
            guard lstat(url.path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { continue }
            let path = url.standardizedFileURL.path
            files.append(path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : url.lastPathComponent)
        }
        return files.sorted()
    }

    /// A stable context id for one file: `f-` and 24 hex digits of the SHA-256 of its relative path, so that
    /// each file is its own post (or profile, community item) and a re-run finds the same one.
    public static func contextID(for relativePath: String) -> String {
        "f-" + SHA256.hash(data: Data(relativePath.utf8)).prefix(12).hexEncoded
    }
}
