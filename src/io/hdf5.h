/* Datasets of HDF5 files (Caffe's HDF5Data layer), read as floats. */
#ifndef NS_IO_HDF5_H
#define NS_IO_HDF5_H

#include "core/ctx.h"
#include "netsurg.h"

/* Reads dataset `name` of the HDF5 file at path whole, converted to float
 * (a float or integer dataset of 1 to NS_NDARRAY_MAX_AXES axes).  Errors
 * name the file and dataset; HDF5's own error printing is off meanwhile. */
ns_status ns_hdf5_read(ns_ctx *ctx, const char *path, const char *name, ns_ndarray *out);
/* Writes a new HDF5 file at path (replacing one) holding float datasets
 * names[i] of rank ranks[i], shape shapes[i], data datas[i]. */
ns_status ns_hdf5_write(ns_ctx *ctx, const char *path, int n, const char *const *names,
                        const int *ranks, const int64_t *const *shapes, const float *const *datas);

#endif
