// Pieces the TEE backends share (private to local-attest).
#pragma once

#include "local-attest/tee.h"

namespace sealroot::local_attest::sgx::internal {

// Report verification as the SDK does it: EGETKEY(REPORT, report.key_id) through `tee`, then
// a constant-time comparison of the CMAC over the body.
Status VerifyReportWithReportKey(Tee& tee, const Report& report);

}  // namespace sealroot::local_attest::sgx::internal
