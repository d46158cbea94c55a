// prefopt core: the mean of paired differences and its standard error, the
// statistic every "gain over a control on the same items" uses (held-out
// problems in the loop, fixed (caption, noise) pairs in the t2i demo).
#pragma once
#include <utility>
#include <vector>

namespace prefopt {

// {mean, sd / √n} of d (sample sd, n − 1); {d[0] or 0, 0} below two items.
std::pair<double, double> mean_and_stderr(const std::vector<double>& d);

}  // namespace prefopt
