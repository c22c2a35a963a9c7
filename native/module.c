/* The module Node loads (native/build/moat.node, built by scripts/build-native.mjs). */
#include <stdio.h>
#include <string.h>

#include "moat.h"

napi_value throw_errno(napi_env env, const char *what, int error) {
  char message[128];
  snprintf(message, sizeof message, "%s failed: %s", what, strerror(error));
  napi_throw_error(env, NULL, message);
  return NULL;
}

void call_back(napi_env env, napi_value fn, size_t argc, napi_value *argv) {
  napi_value global;
  napi_get_global(env, &global);
  napi_call_function(env, global, fn, argc, argv, NULL);
}

static napi_value init(napi_env env, napi_value exports) {
  register_sendfile(env, exports);
  register_list(env, exports);
  register_format(env, exports);
  register_socket(env, exports);
  return exports;
}

NAPI_MODULE(moat_native, init)
