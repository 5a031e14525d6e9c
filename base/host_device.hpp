// ADAQP_HOST_DEVICE marks functions that both host code and CUDA device code call (the GPU codecs
// draw the same random streams and read the same wire widths as the CPU ones).
#pragma once

#if defined(__CUDACC__)
#define ADAQP_HOST_DEVICE __host__ __device__
#else
#define ADAQP_HOST_DEVICE
#endif
