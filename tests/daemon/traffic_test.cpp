#include "lab.hpp"
