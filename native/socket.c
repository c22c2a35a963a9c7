/*
 * What Node cannot ask a socket: its pending error (SO_ERROR).
 *
 * libuv ends a stream on a hang-up that follows a partial read without reading
 * again, so a client's TCP reset that lands while its data is still queued
 * reaches JavaScript as a clean end, not ECONNRESET. The reset is still
 * pending on the socket then; an upload asks before it commits, so a transfer
 * cut by a reset is never stored as complete.
 */
#include "moat.h"

#include <sys/socket.h>

/* socketError(fd) -> the pending errno, 0 when none (or when fd is not one to ask); reading it clears it, as recv would. */
static napi_value socket_error(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      fd < 0) {
    napi_throw_type_error(env, NULL, "socketError(fd)");
    return NULL;
  }
  int error = 0;
  socklen_t length = sizeof error;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = 0;
  napi_value result;
  napi_create_int32(env, error, &result);
  return result;
}

void register_socket(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "socketError", NAPI_AUTO_LENGTH, socket_error, NULL, &fn);
  napi_set_named_property(env, exports, "socketError", fn);
}
