/* Moat's native helper: one N-API module, one file per job (see module.c). */
#ifndef MOAT_NATIVE_H
#define MOAT_NATIVE_H
#define NAPI_VERSION 8
#include <node_api.h>

/* Adds start/receive/sent/cancel (sendfile.c) to the module's exports. */
void register_sendfile(napi_env env, napi_value exports);
/* Adds list (list.c) to the module's exports. */
void register_list(napi_env env, napi_value exports);
/* Adds formattable/formatLines (format.c) to the module's exports. */
void register_format(napi_env env, napi_value exports);
/* Adds socketError (socket.c) to the module's exports. */
void register_socket(napi_env env, napi_value exports);
/* Calls `fn(...argv)` with the global object as `this`, from a thread-safe function's callback. */
void call_back(napi_env env, napi_value fn, size_t argc, napi_value *argv);
/* Throws a JavaScript Error "<what> failed: <strerror>" and returns NULL. */
napi_value throw_errno(napi_env env, const char *what, int error);

#endif
