import Glibc
import MediaCore

extension ObjectStoreError {
    /// Translates a negative librados return code into a typed error.
    static func rados(_ rc: Int32, _ operation: String, _ subject: any CustomStringConvertible) -> ObjectStoreError {
        let errno = -rc
        let reason = String(cString: strerror(errno))
        let message = "\(operation) \(subject): \(reason) (errno \(errno))"
        switch errno {
        case ENOENT: return ObjectStoreError(.notFound, message)
        case EEXIST: return ObjectStoreError(.alreadyExists, message)
        case ETIMEDOUT: return ObjectStoreError(.timedOut, message)
        case ENOSPC, EDQUOT: return ObjectStoreError(.noSpace, message)
        case EPERM, EACCES: return ObjectStoreError(.permissionDenied, message)
        case ENOTCONN, ESHUTDOWN, ECONNREFUSED: return ObjectStoreError(.unavailable, message)
        case EINVAL, ENAMETOOLONG: return ObjectStoreError(.invalidArgument, message)
        default: return ObjectStoreError(.other(errno: errno), message)
        }
    }
}
