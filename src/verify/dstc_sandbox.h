// prefopt verify: the DSTC execution step in the sandbox. Built only when the
// sandbox floor exists (PREFOPT_HAVE_SANDBOX is then defined for users of
// prefopt_verify).
#pragma once
#include "sandbox/sandbox.h"
#include "verify/dstc.h"

namespace prefopt {

// A CodeTestRunner that runs each (code, test) with sandbox run_tests in a
// SandboxPool of `workers`: true when the run is PASSED. A SANDBOX_ERROR is an
// infrastructure failure, not a failing code: it throws prefopt::Error.
CodeTestRunner sandbox_code_test_runner(int workers, const Limits& limits = {});

}  // namespace prefopt
