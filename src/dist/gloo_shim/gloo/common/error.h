// Declarations-only stand-in (see gloo/algorithm.h here).
#pragma once
