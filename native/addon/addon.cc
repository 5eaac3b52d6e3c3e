/*
 * shoal_native: the handful of Linux syscalls Node does not expose (pidfds, SCM_RIGHTS, ptys,
 * subreaper, prctl). Flat functions; this file does argument checks and conversion only, every
 * decision lives in TypeScript (shim/src/native.ts is the typed contract).
 *
 * Errors are thrown as JS Errors shaped like Node's system errors: `code` is the errno name
 * ("ESRCH"), `errno` the number, `syscall` the failing call. Built with NAPI_DISABLE_CPP_EXCEPTIONS,
 * so every throw is followed by returning an empty value.
 */
#include <napi.h>

#include "../helper/cloexec.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <string>
#include <unordered_map>

#include <sys/mount.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>
#include <uv.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

namespace {

// Largest payload recvFd accepts next to the fd; the console-socket protocol sends a short
// path or tag, never more.
constexpr size_t kMaxData = 4096;

const char *ErrnoName(int err) {
  switch (err) {
#define E(x) case x: return #x;
    E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(E2BIG) E(ENOEXEC) E(EBADF)
    E(ECHILD) E(EAGAIN) E(ENOMEM) E(EACCES) E(EFAULT) E(EBUSY) E(EEXIST) E(ENODEV)
    E(ENOTDIR) E(EISDIR) E(EINVAL) E(ENFILE) E(EMFILE) E(ENOTTY) E(ENOSPC) E(EPIPE)
    E(ERANGE) E(ENAMETOOLONG) E(ENOSYS) E(ENOTSOCK) E(EMSGSIZE) E(EPROTOTYPE)
    E(EOPNOTSUPP) E(EAFNOSUPPORT) E(ECONNREFUSED) E(ECONNRESET) E(ENOTCONN) E(ETIMEDOUT)
#undef E
    default: return "UNKNOWN";
  }
}

// A system error shaped like Node's: message, code, errno, syscall.
Napi::Error ErrnoError(Napi::Env env, int err, const char *syscall_name) {
  std::string msg = std::string(syscall_name) + " failed: " + ErrnoName(err) + " (" + strerror(err) + ")";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall_name));
  return e;
}

// Throws a system error and returns the empty value the caller must return.
Napi::Value ThrowErrno(Napi::Env env, int err, const char *syscall_name) {
  ErrnoError(env, err, syscall_name).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value ThrowType(Napi::Env env, const std::string &msg) {
  Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
  return env.Undefined();
}

// Reads info[i] as a non-negative int32 (an fd, pid or count); false after throwing a TypeError.
bool IntArg(const Napi::CallbackInfo &info, size_t i, const char *name, int *out, int min = 0) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    ThrowType(info.Env(), std::string(name) + " must be a number");
    return false;
  }
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (d != static_cast<double>(static_cast<int>(d)) || d < min) {
    ThrowType(info.Env(), std::string(name) + " must be an integer >= " + std::to_string(min));
    return false;
  }
  *out = static_cast<int>(d);
  return true;
}

bool StringArg(const Napi::CallbackInfo &info, size_t i, const char *name, std::string *out) {
  if (info.Length() <= i || !info[i].IsString()) {
    ThrowType(info.Env(), std::string(name) + " must be a string");
    return false;
  }
  *out = info[i].As<Napi::String>().Utf8Value();
  return true;
}

// Reads info[i] as an array of strings, appended to *out; false after throwing a TypeError.
bool StringArrayArg(const Napi::CallbackInfo &info, size_t i, const char *name, std::vector<std::string> *out) {
  if (info.Length() <= i || !info[i].IsArray()) {
    ThrowType(info.Env(), std::string(name) + " must be an array of strings");
    return false;
  }
  Napi::Array a = info[i].As<Napi::Array>();
  for (uint32_t k = 0; k < a.Length(); k++) {
    Napi::Value v = a.Get(k);
    if (!v.IsString()) {
      ThrowType(info.Env(), std::string(name) + " must be an array of strings");
      return false;
    }
    out->push_back(v.As<Napi::String>().Utf8Value());
  }
  return true;
}

// pidfdOpen(pid) -> fd. The fd is CLOEXEC (pidfds always are).
Napi::Value PidfdOpen(const Napi::CallbackInfo &info) {
  int pid;
  if (!IntArg(info, 0, "pid", &pid, 1)) return info.Env().Undefined();
  long fd = syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) return ThrowErrno(info.Env(), errno, "pidfd_open");
  return Napi::Number::New(info.Env(), static_cast<double>(fd));
}

// pidfdSendSignal(fd, sig): signals through the pidfd, so a recycled pid is never hit.
Napi::Value PidfdSendSignal(const Napi::CallbackInfo &info) {
  int fd, sig;
  if (!IntArg(info, 0, "fd", &fd) || !IntArg(info, 1, "sig", &sig)) return info.Env().Undefined();
  if (syscall(SYS_pidfd_send_signal, fd, sig, nullptr, 0) < 0)
    return ThrowErrno(info.Env(), errno, "pidfd_send_signal");
  return info.Env().Undefined();
}

// pidfdWaitExit(fd) -> {status, signal} | null. Non-blocking reap of one of the caller's own
// children through its pidfd; never waits on -1 behind libuv's back.
Napi::Value PidfdWaitExit(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd;
  if (!IntArg(info, 0, "fd", &fd)) return env.Undefined();
  siginfo_t si;
  memset(&si, 0, sizeof si);
  int rc;
  do {
    rc = waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(fd), &si, WEXITED | WNOHANG);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) return ThrowErrno(env, errno, "waitid");
  if (si.si_pid == 0) return env.Null();  // still running
  Napi::Object res = Napi::Object::New(env);
  if (si.si_code == CLD_EXITED) {
    res.Set("status", Napi::Number::New(env, si.si_status));
    res.Set("signal", env.Null());
  } else {
    // Killed or dumped: report the shell convention 128+signo as status too.
    res.Set("status", Napi::Number::New(env, 128 + si.si_status));
    res.Set("signal", Napi::Number::New(env, si.si_status));
  }
  return res;
}

Napi::Value CloseFd(const Napi::CallbackInfo &info) {
  int fd;
  if (!IntArg(info, 0, "fd", &fd)) return info.Env().Undefined();
  // Linux releases the fd even when close fails with EINTR, so never retry.
  if (close(fd) < 0 && errno != EINTR) return ThrowErrno(info.Env(), errno, "close");
  return info.Env().Undefined();
}

// flockExclusive(fd): flock(LOCK_EX), waiting (EINTR retried). 0 or its errno.
Napi::Value FlockExclusive(const Napi::CallbackInfo &info) {
  int fd;
  if (!IntArg(info, 0, "fd", &fd)) return info.Env().Undefined();
  int rc;
  while ((rc = flock(fd, LOCK_EX)) < 0 && errno == EINTR) {
  }
  return Napi::Number::New(info.Env(), rc < 0 ? errno : 0);
}

// renameExchange(a, b): renameat2(RENAME_EXCHANGE), both names must exist. Replaces a file
// atomically without a rename over it, which on ext4 (auto_da_alloc) allocates and writes back
// the new file's blocks at once, and makes freeing the old one cost a block release.
Napi::Value RenameExchange(const Napi::CallbackInfo &info) {
  std::string a, b;
  if (!StringArg(info, 0, "a", &a) || !StringArg(info, 1, "b", &b)) return info.Env().Undefined();
  if (syscall(SYS_renameat2, AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), 2 /* RENAME_EXCHANGE */) < 0)
    return ThrowErrno(info.Env(), errno, "renameat2");
  return info.Env().Undefined();
}

// File system calls of the CLI's hot path, with the errno as a value. Each Node fs function
// is compiled on its first call (its JavaScript, and what it uses of Buffer and the argument
// checks): 0.05-0.3 ms each, about 0.8 ms for the ones a `create` or `run` used once, on top of
// the system calls. These are one C++ call each, and an expected failure (EEXIST, ENOENT, EBUSY)
// makes no exception object.

// mkdirErrno(path, mode) -> 0 or the errno of mkdir(2).
Napi::Value MkdirErrno(const Napi::CallbackInfo &info) {
  std::string p;
  int mode;
  if (!StringArg(info, 0, "path", &p) || !IntArg(info, 1, "mode", &mode)) return info.Env().Undefined();
  return Napi::Number::New(info.Env(), mkdir(p.c_str(), static_cast<mode_t>(mode)) < 0 ? errno : 0);
}

// rmdirErrno(path) -> 0 or the errno of rmdir(2).
Napi::Value RmdirErrno(const Napi::CallbackInfo &info) {
  std::string p;
  if (!StringArg(info, 0, "path", &p)) return info.Env().Undefined();
  return Napi::Number::New(info.Env(), rmdir(p.c_str()) < 0 ? errno : 0);
}

// unlinkErrno(path) -> 0 or the errno of unlink(2).
Napi::Value UnlinkErrno(const Napi::CallbackInfo &info) {
  std::string p;
  if (!StringArg(info, 0, "path", &p)) return info.Env().Undefined();
  return Napi::Number::New(info.Env(), unlink(p.c_str()) < 0 ? errno : 0);
}

// renameErrno(from, to) -> 0 or the errno of rename(2).
Napi::Value RenameErrno(const Napi::CallbackInfo &info) {
  std::string a, b;
  if (!StringArg(info, 0, "from", &a) || !StringArg(info, 1, "to", &b)) return info.Env().Undefined();
  return Napi::Number::New(info.Env(), rename(a.c_str(), b.c_str()) < 0 ? errno : 0);
}

// Writes all of data to fd (EINTR retried; a full non-blocking fd, EAGAIN, waited on with
// poll(2)); 0 or the errno.
static int write_all(int fd, const char *data, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      struct pollfd p = {fd, POLLOUT, 0};
      poll(&p, 1, -1);
      continue;
    }
    if (n < 0) return errno;
    data += n;
    len -= static_cast<size_t>(n);
  }
  return 0;
}

// writeFileErrno(path, text, mode) -> 0 or the errno: open(O_WRONLY|O_CREAT|O_TRUNC), the UTF-8
// text in full, close.
Napi::Value WriteFileErrno(const Napi::CallbackInfo &info) {
  std::string p, text;
  int mode;
  if (!StringArg(info, 0, "path", &p) || !StringArg(info, 1, "text", &text) || !IntArg(info, 2, "mode", &mode)) return info.Env().Undefined();
  int fd;
  do fd = open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode); while (fd < 0 && errno == EINTR);
  if (fd < 0) return Napi::Number::New(info.Env(), errno);
  int err = write_all(fd, text.data(), text.size());
  if (close(fd) < 0 && !err && errno != EINTR) err = errno;
  return Napi::Number::New(info.Env(), err);
}

// writeAllErrno(fd, data) -> 0 or the errno: all of data (a string, as UTF-8, or a Uint8Array),
// EINTR retried; a non-blocking fd that is full (EAGAIN) is waited on with poll(2).
Napi::Value WriteAllErrno(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd;
  if (!IntArg(info, 0, "fd", &fd)) return env.Undefined();
  std::string text;
  const char *data;
  size_t len;
  if (info.Length() > 1 && info[1].IsString()) {
    text = info[1].As<Napi::String>().Utf8Value();
    data = text.data();
    len = text.size();
  } else if (info.Length() > 1 && info[1].IsTypedArray()) {
    Napi::Uint8Array a = info[1].As<Napi::Uint8Array>();
    data = reinterpret_cast<const char *>(a.Data());
    len = a.ByteLength();
  } else {
    return ThrowType(env, "data must be a string or a Uint8Array");
  }
  return Napi::Number::New(env, write_all(fd, data, len));
}

// readLatin1(fd, max) -> one read(2) of up to max bytes as a latin1 string (a char per byte; ''
// at EOF), or the errno (a number: EAGAIN when a non-blocking fd has nothing). The helper's
// channel is read this way: no Buffer to allocate and join, and no exception per EAGAIN.
Napi::Value ReadLatin1(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd, max;
  if (!IntArg(info, 0, "fd", &fd) || !IntArg(info, 1, "max", &max, 1)) return env.Undefined();
  std::vector<char> buf(static_cast<size_t>(max));
  ssize_t n;
  do n = read(fd, buf.data(), buf.size()); while (n < 0 && errno == EINTR);
  if (n < 0) return Napi::Number::New(env, errno);
  napi_value out;
  if (napi_create_string_latin1(env, buf.data(), static_cast<size_t>(n), &out) != napi_ok) return ThrowType(env, "string too long");
  return Napi::Value(env, out);
}

// writeValues(path, values) -> 0, or [index, errno] of the first failure (index -1: the open).
// The file is opened O_WRONLY (a cgroup file is never created or truncated) and each value is
// one write(2): cgroupfs takes one value per write (a devices.allow rule, a pid).
Napi::Value WriteValues(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string p;
  std::vector<std::string> vs;
  if (!StringArg(info, 0, "path", &p) || !StringArrayArg(info, 1, "values", &vs)) return env.Undefined();
  auto failure = [&](int index, int err) {
    Napi::Array r = Napi::Array::New(env, 2);
    r.Set(0u, Napi::Number::New(env, index));
    r.Set(1u, Napi::Number::New(env, err));
    return r;
  };
  int fd;
  do fd = open(p.c_str(), O_WRONLY | O_CLOEXEC); while (fd < 0 && errno == EINTR);
  if (fd < 0) return failure(-1, errno);
  for (size_t i = 0; i < vs.size(); i++) {
    ssize_t n;
    do n = write(fd, vs[i].data(), vs[i].size()); while (n < 0 && errno == EINTR);
    if (n < 0 || static_cast<size_t>(n) != vs[i].size()) {
      int err = n < 0 ? errno : EIO;
      close(fd);
      return failure(static_cast<int>(i), err);
    }
  }
  close(fd);
  return Napi::Number::New(env, 0);
}

Napi::Value SetChildSubreaper(const Napi::CallbackInfo &info) {
  if (info.Length() < 1 || !info[0].IsBoolean()) return ThrowType(info.Env(), "on must be a boolean");
  unsigned long on = info[0].As<Napi::Boolean>().Value() ? 1 : 0;
  if (prctl(PR_SET_CHILD_SUBREAPER, on, 0, 0, 0) < 0)
    return ThrowErrno(info.Env(), errno, "prctl");
  return info.Env().Undefined();
}

// recvFd(socketFd) -> {fd, data}. Blocking: callers use it on sockets they know are ready
// (a console socket after accept) or in a worker. The received fd is CLOEXEC.
Napi::Value RecvFd(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int sock;
  if (!IntArg(info, 0, "socketFd", &sock)) return env.Undefined();
  char buf[kMaxData];
  union {
    char raw[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctl;
  memset(&ctl, 0, sizeof ctl);
  struct iovec iov = {buf, sizeof buf};
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl.raw;
  msg.msg_controllen = sizeof ctl.raw;
  ssize_t n;
  do {
    n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ThrowErrno(env, errno, "recvmsg");
  int fd = -1;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
      memcpy(&fd, CMSG_DATA(c), sizeof fd);
      break;
    }
  }
  if (msg.msg_flags & MSG_CTRUNC) {
    if (fd >= 0) close(fd);
    return ThrowErrno(env, EMSGSIZE, "recvmsg");
  }
  if (fd < 0) {
    // Peer closed (n == 0) or sent a message without an fd.
    return ThrowErrno(env, n == 0 ? ECONNRESET : EBADF, "recvmsg");
  }
  Napi::Object res = Napi::Object::New(env);
  res.Set("fd", Napi::Number::New(env, fd));
  res.Set("data", Napi::String::New(env, buf, static_cast<size_t>(n)));
  return res;
}

// sendFd(socketFd, fd, data): one message carrying fd via SCM_RIGHTS plus data (at least one byte
// is sent, since a zero-length datagram with only ancillary data is lost on some socket types).
Napi::Value SendFd(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int sock, fd;
  std::string data;
  if (!IntArg(info, 0, "socketFd", &sock) || !IntArg(info, 1, "fd", &fd)) return env.Undefined();
  if (info.Length() > 2 && !info[2].IsUndefined()) {
    if (!StringArg(info, 2, "data", &data)) return env.Undefined();
  }
  if (data.size() > kMaxData) return ThrowType(env, "data must be at most 4096 bytes");
  char zero = 0;
  struct iovec iov;
  if (data.empty()) {
    iov.iov_base = &zero;
    iov.iov_len = 1;
  } else {
    iov.iov_base = const_cast<char *>(data.data());
    iov.iov_len = data.size();
  }
  union {
    char raw[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctl;
  memset(&ctl, 0, sizeof ctl);
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl.raw;
  msg.msg_controllen = sizeof ctl.raw;
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  ssize_t n;
  do {
    n = sendmsg(sock, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ThrowErrno(env, errno, "sendmsg");
  return env.Undefined();
}

// socketpair() -> [fd, fd]: AF_UNIX SOCK_SEQPACKET, both ends CLOEXEC.
Napi::Value SocketPair(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return ThrowErrno(env, errno, "socketpair");
  Napi::Array res = Napi::Array::New(env, 2);
  res.Set(0u, Napi::Number::New(env, sv[0]));
  res.Set(1u, Napi::Number::New(env, sv[1]));
  return res;
}

Napi::Value Ptsname(const Napi::CallbackInfo &info) {
  int fd;
  if (!IntArg(info, 0, "masterFd", &fd)) return info.Env().Undefined();
  char name[128];
  int rc = ptsname_r(fd, name, sizeof name);
  if (rc != 0) return ThrowErrno(info.Env(), rc > 0 ? rc : errno, "ptsname");
  return Napi::String::New(info.Env(), name);
}

Napi::Value SetWinsize(const Napi::CallbackInfo &info) {
  int fd, rows, cols;
  if (!IntArg(info, 0, "fd", &fd) || !IntArg(info, 1, "rows", &rows) || !IntArg(info, 2, "cols", &cols))
    return info.Env().Undefined();
  if (rows > 0xffff || cols > 0xffff) return ThrowType(info.Env(), "rows and cols must fit in 16 bits");
  struct winsize ws;
  memset(&ws, 0, sizeof ws);
  ws.ws_row = static_cast<unsigned short>(rows);
  ws.ws_col = static_cast<unsigned short>(cols);
  if (ioctl(fd, TIOCSWINSZ, &ws) < 0) return ThrowErrno(info.Env(), errno, "ioctl");
  return info.Env().Undefined();
}

// prctlSetName(name): names the calling thread (the main thread for JS callers) so `ps` shows the
// stage; the kernel truncates to 15 bytes.
Napi::Value PrctlSetName(const Napi::CallbackInfo &info) {
  std::string name;
  if (!StringArg(info, 0, "name", &name)) return info.Env().Undefined();
  if (prctl(PR_SET_NAME, name.c_str(), 0, 0, 0) < 0) return ThrowErrno(info.Env(), errno, "prctl");
  return info.Env().Undefined();
}

Napi::Value FdIsCloexec(const Napi::CallbackInfo &info) {
  int fd;
  if (!IntArg(info, 0, "fd", &fd)) return info.Env().Undefined();
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0) return ThrowErrno(info.Env(), errno, "fcntl");
  return Napi::Boolean::New(info.Env(), (flags & FD_CLOEXEC) != 0);
}

// ---- containerd shim support: fd readiness on the event loop, reaping by pid, pipes, mounts ----

// One-shot readiness watch of an fd on Node's own libuv loop (a pidfd becomes readable when its
// process exits). The JS callback runs on the main thread like any other I/O callback.
struct FdWatch {
  uv_poll_t poll;
  napi_env env;
  Napi::FunctionReference cb;
  double id;
};

std::unordered_map<double, FdWatch *> g_watches;
double g_next_watch = 1;

void CloseWatch(FdWatch *w) {
  uv_poll_stop(&w->poll);
  g_watches.erase(w->id);
  uv_close(reinterpret_cast<uv_handle_t *>(&w->poll), [](uv_handle_t *h) {
    delete static_cast<FdWatch *>(h->data);
  });
}

void OnFdReadable(uv_poll_t *handle, int status, int /*events*/) {
  FdWatch *w = static_cast<FdWatch *>(handle->data);
  Napi::Env env(w->env);
  Napi::FunctionReference cb = std::move(w->cb);
  CloseWatch(w);
  Napi::HandleScope scope(env);
  // MakeCallback drains the microtask queue afterwards, as for Node's own I/O callbacks.
  cb.MakeCallback(env.Global(), {Napi::Number::New(env, status)});
  if (env.IsExceptionPending()) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
  }
}

// watchFdReadable(fd, cb) -> id: calls cb(status) once, when fd becomes readable (status < 0 is a
// libuv error). The fd stays owned by the caller and must stay open until the callback or unwatch.
Napi::Value WatchFdReadable(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd;
  if (!IntArg(info, 0, "fd", &fd)) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsFunction()) return ThrowType(env, "callback must be a function");
  uv_loop_t *loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) return ThrowErrno(env, EINVAL, "napi_get_uv_event_loop");
  FdWatch *w = new FdWatch();
  int rc = uv_poll_init(loop, &w->poll, fd);
  if (rc < 0) {
    delete w;
    return ThrowErrno(env, -rc, "uv_poll_init");
  }
  w->poll.data = w;
  w->env = env;
  w->cb = Napi::Persistent(info[1].As<Napi::Function>());
  w->id = g_next_watch++;
  rc = uv_poll_start(&w->poll, UV_READABLE, OnFdReadable);
  if (rc < 0) {
    w->cb.Reset();
    uv_close(reinterpret_cast<uv_handle_t *>(&w->poll), [](uv_handle_t *h) {
      delete static_cast<FdWatch *>(h->data);
    });
    return ThrowErrno(env, -rc, "uv_poll_start");
  }
  g_watches[w->id] = w;
  return Napi::Number::New(env, w->id);
}

// unwatchFd(id): cancels a watch; unknown or already fired ids are ignored.
Napi::Value UnwatchFd(const Napi::CallbackInfo &info) {
  int id;
  if (!IntArg(info, 0, "id", &id)) return info.Env().Undefined();
  auto it = g_watches.find(id);
  if (it != g_watches.end()) {
    it->second->cb.Reset();
    CloseWatch(it->second);
  }
  return info.Env().Undefined();
}

// waitPid(pid) -> {status, signal} | null: waitid(P_PID, WEXITED|WNOHANG) of one child, for
// orphans re-parented to a subreaper (never P_ALL, which would steal libuv's children).
Napi::Value WaitPid(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int pid;
  if (!IntArg(info, 0, "pid", &pid, 1)) return env.Undefined();
  siginfo_t si;
  memset(&si, 0, sizeof si);
  int rc;
  do {
    rc = waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOHANG);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) return ThrowErrno(env, errno, "waitid");
  if (si.si_pid == 0) return env.Null();
  Napi::Object res = Napi::Object::New(env);
  bool exited = si.si_code == CLD_EXITED;
  res.Set("status", Napi::Number::New(env, exited ? si.si_status : 128 + si.si_status));
  res.Set("signal", exited ? env.Null() : Napi::Number::New(env, si.si_status));
  return res;
}

// pipe() -> [readFd, writeFd]: pipe2(O_CLOEXEC), both ends blocking (a container's stdio must
// not see O_NONBLOCK; the shim wraps only its own end in a non-blocking stream).
Napi::Value Pipe(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return ThrowErrno(env, errno, "pipe2");
  Napi::Array res = Napi::Array::New(env, 2);
  res.Set(0u, Napi::Number::New(env, p[0]));
  res.Set(1u, Napi::Number::New(env, p[1]));
  return res;
}

// umount2(target, flags): flags are MNT_* bits (MNT_DETACH = 2).
Napi::Value Umount2(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string target;
  int flags;
  if (!StringArg(info, 0, "target", &target) || !IntArg(info, 1, "flags", &flags)) return env.Undefined();
  if (umount2(target.c_str(), flags) < 0) return ThrowErrno(env, errno, "umount2");
  return env.Undefined();
}

// ---- cgroups: the v2 device filter (native/bpf/devfilter.c) and eventfd for v1 OOM notifications ----

}  // namespace

#include "../bpf/devfilter.c"

#include <sys/eventfd.h>

#include <vector>

namespace {

// attachDeviceFilter(cgroupDir, rules, defaultAllow) -> program id: builds the device program
// for `rules` (a flat array, 4 numbers per rule: type (0 all, 1 block, 2 char), major, minor
// (-1 = any), access bits (1 mknod, 2 read, 4 write)), loads it and attaches it to the cgroup
// directory, replacing the device programs attached there before.
Napi::Value AttachDeviceFilter(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string dir;
  if (!StringArg(info, 0, "cgroupDir", &dir)) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsArray()) return ThrowType(env, "rules must be an array of numbers");
  Napi::Array arr = info[1].As<Napi::Array>();
  uint32_t len = arr.Length();
  if (len % 4 != 0 || len / 4 > SHOAL_DEVFILTER_MAX_RULES) return ThrowType(env, "rules must hold 4 numbers per rule");
  std::vector<shoal_dev_rule> rules(len / 4);
  for (uint32_t i = 0; i < len; i++) {
    Napi::Value v = arr.Get(i);
    if (!v.IsNumber()) return ThrowType(env, "rules must be an array of numbers");
    int64_t n = v.As<Napi::Number>().Int64Value();
    shoal_dev_rule &r = rules[i / 4];
    switch (i % 4) {
      case 0: r.type = static_cast<int>(n); break;
      case 1: r.major = n; break;
      case 2: r.minor = n; break;
      default: r.access = static_cast<int>(n); break;
    }
  }
  bool defaultAllow = info.Length() > 2 && info[2].ToBoolean().Value();
  int need = shoal_devfilter_build(rules.data(), rules.size(), defaultAllow ? 1 : 0, nullptr, 0);
  if (need < 0) return ThrowType(env, "invalid device rule");
  std::vector<struct bpf_insn> insns(static_cast<size_t>(need));
  shoal_devfilter_build(rules.data(), rules.size(), defaultAllow ? 1 : 0, insns.data(), insns.size());
  int dirfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0) return ThrowErrno(env, errno, "open");
  std::vector<char> log(65536);
  uint32_t id = 0;
  int rc = shoal_devfilter_attach(dirfd, insns.data(), insns.size(), &id, log.data(), log.size());
  close(dirfd);
  if (rc < 0) {
    if (rc == -EACCES && log[0]) {
      Napi::Error e = Napi::Error::New(env, std::string("BPF verifier rejected the device program: ") + log.data());
      e.Set("code", Napi::String::New(env, "EACCES"));
      e.Set("errno", Napi::Number::New(env, EACCES));
      e.Set("syscall", Napi::String::New(env, "bpf"));
      e.ThrowAsJavaScriptException();
      return env.Undefined();
    }
    return ThrowErrno(env, -rc, "bpf");
  }
  return Napi::Number::New(env, id);
}

// deviceFilterCount(cgroupDir) -> number of device programs attached to the directory.
Napi::Value DeviceFilterCount(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string dir;
  if (!StringArg(info, 0, "cgroupDir", &dir)) return env.Undefined();
  int dirfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0) return ThrowErrno(env, errno, "open");
  int n = shoal_devfilter_count(dirfd);
  close(dirfd);
  if (n < 0) return ThrowErrno(env, -n, "bpf");
  return Napi::Number::New(env, n);
}

// eventfd() -> fd: eventfd(0, EFD_CLOEXEC) (blocking reads; wait with watchFdReadable).
Napi::Value EventFd(const Napi::CallbackInfo &info) {
  int fd = eventfd(0, EFD_CLOEXEC);
  if (fd < 0) return ThrowErrno(info.Env(), errno, "eventfd");
  return Napi::Number::New(info.Env(), fd);
}

// A memfd holding the bytes of the file at `path`, sealed against any change (write, grow, shrink,
// more seals), CLOEXEC: 0 with *out set, or an errno. A helper started from it sees itself in a
// sealed memfd and needs no re-exec of its own (CVE-2019-5736: /proc/<init>/exe is never the
// host binary).
static int make_sealed_copy(const char *path, int *out) {
  int in = open(path, O_RDONLY | O_CLOEXEC);
  if (in < 0) return errno;
  struct stat st;
  int mfd = -1, err = 0;
  if (fstat(in, &st) < 0) err = errno;
  else if ((mfd = static_cast<int>(syscall(SYS_memfd_create, "shoal-init", MFD_CLOEXEC | MFD_ALLOW_SEALING))) < 0) err = errno;
  off_t off = 0;
  while (!err && off < st.st_size) {
    ssize_t k = sendfile(mfd, in, &off, static_cast<size_t>(st.st_size - off));
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) err = k < 0 ? errno : EIO;
  }
  if (!err && fcntl(mfd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0) err = errno;
  close(in);
  if (err) {
    if (mfd >= 0) close(mfd);
    return err;
  }
  *out = mfd;
  return 0;
}

// One start of the helper. Made on the main thread (arguments read, every fd the child gets
// duplicated, the sync socketpair made), then run there or on the spawner thread: run_spawn
// touches nothing of JavaScript's.
struct SpawnJob {
  std::string file, cwd, seal_from;
  std::vector<std::string> args;
  std::vector<int> src;  // CLOEXEC copies above the target range: the child's fds 0..n-1, then its sync end
  int exe = -1;          // CLOEXEC copy (above the range) of the caller's sealed copy, or -1
  int made_exe = -1;     // the sealed copy made from seal_from for this start (the caller keeps it)
  int sync = -1;         // the parent's end of the sync socketpair
  pid_t pid = -1;
  int pidfd = -1;
  int err = 0;
  const char *failed = "";
  bool done = false;  // set by the spawner thread under spawner_lock
};

// posix_spawn (a vfork: no copy of Node's page tables) of the helper, argv [file, ...args], an
// empty environment, an empty signal mask and every signal at its default; src[i] becomes fd i.
// Closes the sources; on success j->pid and j->pidfd are set, otherwise j->err and j->failed.
static void run_spawn(SpawnJob *j) {
  const int n = static_cast<int>(j->src.size());  // the target range is 0..n-1
  if (j->exe < 0 && !j->seal_from.empty()) {
    int mfd = -1;
    // Best effort: without a copy the helper is started from its file and makes its own.
    if (make_sealed_copy(j->seal_from.c_str(), &mfd) == 0) {
      j->made_exe = mfd;
      j->exe = fcntl(mfd, F_DUPFD_CLOEXEC, n);
    }
  }
  std::string exe_path = j->exe >= 0 ? "/proc/self/fd/" + std::to_string(j->exe) : j->file;
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  // dup2 onto the target clears FD_CLOEXEC there; the copies above stay CLOEXEC.
  for (int i = 0; i < n; i++) posix_spawn_file_actions_adddup2(&fa, j->src[i], i);
  posix_spawn_file_actions_addchdir_np(&fa, j->cwd.c_str());
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char *> argv;
  for (auto &a : j->args) argv.push_back(const_cast<char *>(a.c_str()));
  argv.push_back(nullptr);
  char *envp[] = {nullptr};
  pid_t pid = -1;
  int err = posix_spawn(&pid, exe_path.c_str(), &fa, &attr, argv.data(), envp);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  for (int fd : j->src) close(fd);
  j->src.clear();
  if (j->exe >= 0) close(j->exe);
  j->exe = -1;
  if (err) {
    j->err = err;
    j->failed = "posix_spawn";
    return;
  }
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    j->err = errno;
    j->failed = "pidfd_open";
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return;
  }
  j->pid = pid;
  j->pidfd = pidfd;
}

// Reads spawnHelper's arguments (file, args, fds, cwd, exeFd?, sealFrom?) into j: duplicates
// every fd the child gets (fds[i] becomes its fd i, -1 is /dev/null) and a new AF_UNIX stream
// socketpair's child end (its fd fds.length, the sync channel) above the target range. False
// after throwing; nothing is left open then.
static bool prepare_spawn(const Napi::CallbackInfo &info, SpawnJob *j) {
  Napi::Env env = info.Env();
  if (!StringArg(info, 0, "file", &j->file)) return false;
  if (info.Length() < 3 || !info[2].IsArray()) return ThrowType(env, "fds must be an array"), false;
  if (!StringArg(info, 3, "cwd", &j->cwd)) return false;
  int exe_fd = -1;
  if (info.Length() > 4 && !info[4].IsUndefined() && !IntArg(info, 4, "exeFd", &exe_fd)) return false;
  if (info.Length() > 5 && !info[5].IsUndefined() && !StringArg(info, 5, "sealFrom", &j->seal_from)) return false;
  Napi::Array jfds = info[2].As<Napi::Array>();
  j->args.push_back(j->file);
  if (!StringArrayArg(info, 1, "args", &j->args)) return false;
  std::vector<int> want;
  for (uint32_t i = 0; i < jfds.Length(); i++) {
    Napi::Value v = jfds.Get(i);
    if (!v.IsNumber()) return ThrowType(env, "fds must be numbers"), false;
    want.push_back(v.As<Napi::Number>().Int32Value());
  }
  const int n = static_cast<int>(want.size());
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return ThrowErrno(env, errno, "socketpair"), false;
  // Every source is first copied above the target range, so no dup2 clobbers a later source.
  int err = 0;
  for (int i = 0; i <= n && !err; i++) {
    int from = i == n ? sv[1] : want[i];
    int fd = from < 0 ? open("/dev/null", O_RDWR | O_CLOEXEC) : fcntl(from, F_DUPFD_CLOEXEC, n + 1);
    if (fd < 0) err = errno;
    else j->src.push_back(fd);
  }
  // The binary: the memfd exeFd through /proc/self/fd, its copy above the range too.
  if (!err && exe_fd >= 0 && (j->exe = fcntl(exe_fd, F_DUPFD_CLOEXEC, n + 1)) < 0) err = errno;
  close(sv[1]);
  if (err) {
    for (int fd : j->src) close(fd);
    close(sv[0]);
    return ThrowErrno(env, err, "dup"), false;
  }
  j->sync = sv[0];
  return true;
}

// The started helper as JavaScript sees it: {pid, pidfd, sync, exeFd} (sync non-blocking; exeFd
// the sealed copy this start made, or -1), or a thrown error (nothing left open).
static Napi::Value finish_spawn(Napi::Env env, SpawnJob *j) {
  if (j->err) {
    close(j->sync);
    if (j->made_exe >= 0) close(j->made_exe);
    return ThrowErrno(env, j->err, j->failed);
  }
  fcntl(j->sync, F_SETFL, fcntl(j->sync, F_GETFL) | O_NONBLOCK);
  Napi::Object res = Napi::Object::New(env);
  res.Set("pid", Napi::Number::New(env, j->pid));
  res.Set("pidfd", Napi::Number::New(env, j->pidfd));
  res.Set("sync", Napi::Number::New(env, j->sync));
  res.Set("exeFd", Napi::Number::New(env, j->made_exe));
  return res;
}

// spawnHelper(file, args, fds, cwd, exeFd?, sealFrom?) -> {pid, pidfd, sync, exeFd}: starts the
// helper (see run_spawn and prepare_spawn) from exeFd, a sealed copy (sealedCopy), or from a
// sealed copy it makes of sealFrom (returned as exeFd, for the next starts), or from file.
Napi::Value SpawnHelper(const Napi::CallbackInfo &info) {
  SpawnJob j;
  if (!prepare_spawn(info, &j)) return info.Env().Undefined();
  run_spawn(&j);
  return finish_spawn(info.Env(), &j);
}

// Starts handed to the spawner thread, by id, until joined (the map is the main thread's).
static std::unordered_map<int, std::unique_ptr<SpawnJob>> spawn_jobs;
static int next_spawn_job = 1;

// The spawner: one thread for the life of the process, not one per start. A process's parent is
// the thread that made it, and the helper's PR_SET_PDEATHSIG fires when that thread ends: it must
// end only with the process.
// (Never destroyed: the thread may still wait on them while the process exits.)
static std::mutex &spawner_lock = *new std::mutex;
static std::condition_variable &spawner_wake = *new std::condition_variable;
static std::deque<SpawnJob *> &spawner_queue = *new std::deque<SpawnJob *>;
static bool spawner_running = false;

static void spawner_main() {
  for (;;) {
    SpawnJob *j;
    {
      std::unique_lock<std::mutex> l(spawner_lock);
      spawner_wake.wait(l, [] { return !spawner_queue.empty(); });
      j = spawner_queue.front();
      spawner_queue.pop_front();
    }
    run_spawn(j);
    {
      std::lock_guard<std::mutex> l(spawner_lock);
      j->done = true;
    }
    spawner_wake.notify_all();
  }
}

// spawnHelperStart(same arguments as spawnHelper) -> id: the same start on the spawner thread,
// so the main thread goes on while the kernel makes the process (posix_spawn holds its caller
// until the child's exec). spawnHelperJoin(id) waits for it and returns what spawnHelper would.
Napi::Value SpawnHelperStart(const Napi::CallbackInfo &info) {
  auto j = std::make_unique<SpawnJob>();
  if (!prepare_spawn(info, j.get())) return info.Env().Undefined();
  {
    std::lock_guard<std::mutex> l(spawner_lock);
    if (!spawner_running) {
      std::thread(spawner_main).detach();
      spawner_running = true;
    }
    spawner_queue.push_back(j.get());
  }
  spawner_wake.notify_all();
  int id = next_spawn_job++;
  spawn_jobs.emplace(id, std::move(j));
  return Napi::Number::New(info.Env(), id);
}

// spawnHelperChannel(id) -> fd: the parent's end of a start's sync channel before it is joined
// (blocking until then, and still the job's: joining hands it over, or closes it on failure).
// The plan can go out at once: it waits in the socket while the spawner thread starts the helper.
Napi::Value SpawnHelperChannel(const Napi::CallbackInfo &info) {
  int id;
  if (!IntArg(info, 0, "id", &id)) return info.Env().Undefined();
  auto it = spawn_jobs.find(id);
  if (it == spawn_jobs.end()) return ThrowType(info.Env(), "no such helper start");
  return Napi::Number::New(info.Env(), it->second->sync);
}

Napi::Value SpawnHelperJoin(const Napi::CallbackInfo &info) {
  int id;
  if (!IntArg(info, 0, "id", &id)) return info.Env().Undefined();
  auto it = spawn_jobs.find(id);
  if (it == spawn_jobs.end()) return ThrowType(info.Env(), "no such helper start");
  std::unique_ptr<SpawnJob> j = std::move(it->second);
  spawn_jobs.erase(it);
  {
    std::unique_lock<std::mutex> l(spawner_lock);
    spawner_wake.wait(l, [&] { return j->done; });
  }
  return finish_spawn(info.Env(), j.get());
}

// The holder of this process's memory past its exit (see hold_memory_past_exit): it shares the
// memory and this thread's TLS, so it makes raw system calls only. Its fds are copies: all but
// the pipe's read end are closed (a copy of stdout would keep the caller's pipe open), then it
// waits for EOF, which comes when the exiting process's files are closed, after its own share
// of the memory was dropped; its exit then frees the memory.
static int exit_holder(void *arg) {
  const int fd = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  if (fd > 0) syscall(SYS_close_range, 0, fd - 1, 0);
  syscall(SYS_close_range, fd + 1, ~0U, 0);
  char c;
  while (syscall(SYS_read, fd, &c, 1) < 0) {
  }
  syscall(SYS_exit, 0);
  return 0;
}

// Freeing Node's memory (tens of MB of page tables and pages: 3-4 ms here) is part of an exit,
// before the kernel reports it to the parent: a caller waiting for the runtime would wait for it
// too. A process that shares the memory (CLONE_VM, not a thread) keeps it alive past this
// process's exit and frees it when it ends, a moment later, off the caller's wait. It is named
// "exit-hold" and the command line is cleared first (it shares the memory the kernel reads
// /proc/PID/cmdline from), so nothing takes it for the runtime or its container. Best effort:
// without it the exit is as before.
static void hold_memory_past_exit() {
  // The holder closes its fds with close_range (Linux 5.9): without it, no holder (a close of
  // nothing says whether the call exists).
  if (syscall(SYS_close_range, ~0U, ~0U, 0) < 0) return;
  // The original argument area (arg_start, arg_end: fields 48 and 49 of /proc/self/stat);
  // Node and libuv work on copies of it.
  char stat[1024];
  int sfd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (sfd >= 0) {
    ssize_t n = read(sfd, stat, sizeof stat - 1);
    close(sfd);
    const char *p = n > 0 ? (stat[n] = 0, strrchr(stat, ')')) : nullptr;
    unsigned long long start = 0, end = 0;
    for (int field = 2; p && *p && field < 49; p++) {
      if (*p != ' ') continue;
      field++;
      if (field == 48) start = strtoull(p + 1, nullptr, 10);
      if (field == 49) end = strtoull(p + 1, nullptr, 10);
    }
    if (start && end > start && end - start < (1u << 20)) memset(reinterpret_cast<void *>(start), 0, end - start);
  }
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return;
  const size_t stack_size = 64 * 1024;
  void *stack = mmap(nullptr, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, nullptr);  // inherited by the holder; this thread exits next
  prctl(PR_SET_NAME, "exit-hold", 0, 0, 0);
  clone(exit_holder, static_cast<char *>(stack) + stack_size, CLONE_VM | SIGCHLD, reinterpret_cast<void *>(static_cast<intptr_t>(p[0])));
  // p[1] closes with this process.
}

// cloexecFrom(low): marks every fd from `low` up close-on-exec (native/helper/cloexec.h), so
// that a child this process execs (a hook) gets only what it is given, not what our own caller
// left open.
Napi::Value CloexecFrom(const Napi::CallbackInfo &info) {
  int low;
  if (!IntArg(info, 0, "low", &low)) return info.Env().Undefined();
  cloexec_from(low);
  return info.Env().Undefined();
}

// exitNow(code, hold = true): _exit(2) at once. For a CLI whose output is all written
// synchronously: Node's own exit (exit handlers, V8 and platform teardown, joining its worker
// threads) is skipped, and with `hold` the freeing of its memory is left to a process that
// outlives it by a moment (an orphan: whatever reaps orphans here reaps it).
Napi::Value ExitNow(const Napi::CallbackInfo &info) {
  int code = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
  if (!(info.Length() > 1 && info[1].IsBoolean() && !info[1].As<Napi::Boolean>().Value())) hold_memory_past_exit();
  _exit(code & 0xff);
}

// mount(2) or umount2(2) on a threadpool thread: a mount waits on kernel locks that other
// containers' setup holds, and must not stop the shim's event loop meanwhile.
class MountWork : public Napi::AsyncWorker {
 public:
  MountWork(Napi::Env env, bool umount, std::string source, std::string target, std::string fstype, unsigned long flags, std::string data)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), umount_(umount), source_(std::move(source)),
        target_(std::move(target)), fstype_(std::move(fstype)), flags_(flags), data_(std::move(data)) {}
  // Queues the work; the promise settles with its result.
  Napi::Promise Start() {
    Napi::Promise p = deferred_.Promise();
    Queue();
    return p;
  }
  void Execute() override {
    int rc = umount_ ? umount2(target_.c_str(), static_cast<int>(flags_))
                     : mount(source_.c_str(), target_.c_str(), fstype_.empty() ? nullptr : fstype_.c_str(), flags_, data_.empty() ? nullptr : data_.c_str());
    err_ = rc < 0 ? errno : 0;
  }
  void OnOK() override {
    if (err_) deferred_.Reject(ErrnoError(Env(), err_, umount_ ? "umount2" : "mount").Value());
    else deferred_.Resolve(Env().Undefined());
  }
  void OnError(const Napi::Error &e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  bool umount_;
  std::string source_, target_, fstype_;
  unsigned long flags_;
  std::string data_;
  int err_ = 0;
};

// mountAsync(source, target, fstype, flags, data?) -> Promise: mount(2) off the main thread.
Napi::Value MountAsync(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string source, target, fstype, data;
  if (!StringArg(info, 0, "source", &source) || !StringArg(info, 1, "target", &target) || !StringArg(info, 2, "fstype", &fstype))
    return env.Undefined();
  if (info.Length() < 4 || !info[3].IsNumber()) return ThrowType(env, "flags must be a number");
  unsigned long flags = static_cast<unsigned long>(info[3].As<Napi::Number>().Int64Value());
  if (info.Length() > 4 && !info[4].IsUndefined() && !StringArg(info, 4, "data", &data)) return env.Undefined();
  return (new MountWork(env, false, source, target, fstype, flags, data))->Start();
}

// umount2Async(target, flags) -> Promise: umount2(2) off the main thread.
Napi::Value Umount2Async(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string target;
  int flags;
  if (!StringArg(info, 0, "target", &target) || !IntArg(info, 1, "flags", &flags)) return env.Undefined();
  return (new MountWork(env, true, "", target, "", static_cast<unsigned long>(flags), ""))->Start();
}

// sealedCopy(path) -> fd: make_sealed_copy of the file, for spawnHelper's exeFd.
Napi::Value SealedCopy(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!StringArg(info, 0, "path", &path)) return env.Undefined();
  int mfd = -1;
  int err = make_sealed_copy(path.c_str(), &mfd);
  if (err) return ThrowErrno(env, err, "sealed copy");
  return Napi::Number::New(env, mfd);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("pidfdOpen", Napi::Function::New(env, PidfdOpen, "pidfdOpen"));
  exports.Set("pidfdSendSignal", Napi::Function::New(env, PidfdSendSignal, "pidfdSendSignal"));
  exports.Set("pidfdWaitExit", Napi::Function::New(env, PidfdWaitExit, "pidfdWaitExit"));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd, "closeFd"));
  exports.Set("flockExclusive", Napi::Function::New(env, FlockExclusive, "flockExclusive"));
  exports.Set("renameExchange", Napi::Function::New(env, RenameExchange, "renameExchange"));
  exports.Set("mkdirErrno", Napi::Function::New(env, MkdirErrno, "mkdirErrno"));
  exports.Set("rmdirErrno", Napi::Function::New(env, RmdirErrno, "rmdirErrno"));
  exports.Set("unlinkErrno", Napi::Function::New(env, UnlinkErrno, "unlinkErrno"));
  exports.Set("renameErrno", Napi::Function::New(env, RenameErrno, "renameErrno"));
  exports.Set("writeFileErrno", Napi::Function::New(env, WriteFileErrno, "writeFileErrno"));
  exports.Set("writeAllErrno", Napi::Function::New(env, WriteAllErrno, "writeAllErrno"));
  exports.Set("writeValues", Napi::Function::New(env, WriteValues, "writeValues"));
  exports.Set("readLatin1", Napi::Function::New(env, ReadLatin1, "readLatin1"));
  exports.Set("setChildSubreaper", Napi::Function::New(env, SetChildSubreaper, "setChildSubreaper"));
  exports.Set("recvFd", Napi::Function::New(env, RecvFd, "recvFd"));
  exports.Set("sendFd", Napi::Function::New(env, SendFd, "sendFd"));
  exports.Set("socketpair", Napi::Function::New(env, SocketPair, "socketpair"));
  exports.Set("ptsname", Napi::Function::New(env, Ptsname, "ptsname"));
  exports.Set("setWinsize", Napi::Function::New(env, SetWinsize, "setWinsize"));
  exports.Set("prctlSetName", Napi::Function::New(env, PrctlSetName, "prctlSetName"));
  exports.Set("fdIsCloexec", Napi::Function::New(env, FdIsCloexec, "fdIsCloexec"));
  exports.Set("watchFdReadable", Napi::Function::New(env, WatchFdReadable, "watchFdReadable"));
  exports.Set("unwatchFd", Napi::Function::New(env, UnwatchFd, "unwatchFd"));
  exports.Set("waitPid", Napi::Function::New(env, WaitPid, "waitPid"));
  exports.Set("pipe", Napi::Function::New(env, Pipe, "pipe"));
  exports.Set("umount2", Napi::Function::New(env, Umount2, "umount2"));
  exports.Set("mountAsync", Napi::Function::New(env, MountAsync, "mountAsync"));
  exports.Set("umount2Async", Napi::Function::New(env, Umount2Async, "umount2Async"));
  exports.Set("attachDeviceFilter", Napi::Function::New(env, AttachDeviceFilter, "attachDeviceFilter"));
  exports.Set("deviceFilterCount", Napi::Function::New(env, DeviceFilterCount, "deviceFilterCount"));
  exports.Set("eventfd", Napi::Function::New(env, EventFd, "eventfd"));
  exports.Set("spawnHelper", Napi::Function::New(env, SpawnHelper, "spawnHelper"));
  exports.Set("spawnHelperStart", Napi::Function::New(env, SpawnHelperStart, "spawnHelperStart"));
  exports.Set("spawnHelperJoin", Napi::Function::New(env, SpawnHelperJoin, "spawnHelperJoin"));
  exports.Set("spawnHelperChannel", Napi::Function::New(env, SpawnHelperChannel, "spawnHelperChannel"));
  exports.Set("sealedCopy", Napi::Function::New(env, SealedCopy, "sealedCopy"));
  exports.Set("cloexecFrom", Napi::Function::New(env, CloexecFrom, "cloexecFrom"));
  exports.Set("exitNow", Napi::Function::New(env, ExitNow, "exitNow"));
  return exports;
}

}  // namespace

NODE_API_MODULE(shoal_native, Init)
