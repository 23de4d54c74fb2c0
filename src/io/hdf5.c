/* HDF5 datasets through libhdf5's C API (serial), as Caffe's
 * hdf5_load_nd_dataset: float or integer data of any rank >= 1, converted
 * to float by the library on read. */
#include "io/hdf5.h"

#include <hdf5.h>
#include <stdio.h>
#include <string.h>

#include "core/blob.h"

/* The shape of an open dataset into out (count set); checked sizes. */
static ns_status read_shape(ns_ctx *ctx, hid_t ds, const char *path, const char *name,
                            ns_ndarray *out) {
  hid_t space = H5Dget_space(ds);
  int rank = space < 0 ? -1 : H5Sget_simple_extent_ndims(space);
  hsize_t dims[NS_NDARRAY_MAX_AXES];
  if (rank >= 1 && rank <= NS_NDARRAY_MAX_AXES) H5Sget_simple_extent_dims(space, dims, NULL);
  if (space >= 0) H5Sclose(space);
  if (rank < 1 || rank > NS_NDARRAY_MAX_AXES)
    return ns_fail(ctx, NS_ERR_INPUT, "%s: dataset '%s' has %d axes (1 to %d)", path, name, rank,
                   NS_NDARRAY_MAX_AXES);
  int64_t count = 1;
  for (int i = 0; i < rank; i++) {
    if (dims[i] > INT64_MAX || !ns_mul_i64(count, (int64_t)dims[i], &count))
      return ns_fail(ctx, NS_ERR_INPUT, "%s: dataset '%s' is too large", path, name);
    out->shape[i] = (int64_t)dims[i];
  }
  out->num_axes = rank, out->count = count;
  char what[512];
  snprintf(what, sizeof what, "%s: dataset '%s'", path, name);
  return ns_check_tensor_size(ctx, count, what);
}

static ns_status read_dataset(ns_ctx *ctx, hid_t file, const char *path, const char *name,
                              ns_ndarray *out) {
  hid_t ds = H5Dopen2(file, name, H5P_DEFAULT);
  if (ds < 0) return ns_fail(ctx, NS_ERR_INPUT, "%s: no dataset '%s'", path, name);
  hid_t type = H5Dget_type(ds);
  H5T_class_t cls = type < 0 ? H5T_NO_CLASS : H5Tget_class(type);
  if (type >= 0) H5Tclose(type);
  ns_status st = NS_OK;
  if (cls != H5T_FLOAT && cls != H5T_INTEGER)
    st = ns_fail(ctx, NS_ERR_INPUT, "%s: dataset '%s' is not numeric", path, name);
  if (st == NS_OK) st = read_shape(ctx, ds, path, name, out);
  if (st == NS_OK && !(out->data = ns_floats_alloc(ctx, out->count))) st = ctx->status;
  if (st == NS_OK && out->count > 0 &&
      H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out->data) < 0)
    st = ns_fail(ctx, NS_ERR_INPUT, "%s: cannot read dataset '%s'", path, name);
  H5Dclose(ds);
  return st;
}

ns_status ns_hdf5_read(ns_ctx *ctx, const char *path, const char *name, ns_ndarray *out) {
  memset(out, 0, sizeof *out);
  /* libhdf5 prints an error stack by default; keep it quiet during the read */
  H5E_auto2_t old_fn;
  void *old_data;
  H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  ns_status st;
  htri_t is = H5Fis_hdf5(path);
  if (is < 0) {
    st = ns_fail(ctx, NS_ERR_IO, "cannot open the HDF5 file %s", path);
  } else if (is == 0) {
    st = ns_fail(ctx, NS_ERR_INPUT, "%s: not an HDF5 file", path);
  } else {
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) {
      st = ns_fail(ctx, NS_ERR_INPUT, "%s: cannot open as HDF5", path);
    } else {
      st = read_dataset(ctx, file, path, name, out);
      H5Fclose(file);
    }
  }
  H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
  if (st != NS_OK) ns_ndarray_free(ctx, out);
  return st;
}

static ns_status write_dataset(ns_ctx *ctx, hid_t file, const char *path, const char *name,
                               int rank, const int64_t *shape, const float *data) {
  hsize_t dims[NS_NDARRAY_MAX_AXES];
  if (rank < 1 || rank > NS_NDARRAY_MAX_AXES)
    return ns_fail(ctx, NS_ERR_UNSUPPORTED, "%s: dataset '%s' of %d axes", path, name, rank);
  for (int i = 0; i < rank; i++) dims[i] = (hsize_t)shape[i];
  hid_t space = H5Screate_simple(rank, dims, NULL);
  hid_t ds = space < 0 ? -1
                       : H5Dcreate2(file, name, H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT,
                                    H5P_DEFAULT);
  herr_t rc = ds < 0 ? -1 : H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
  if (ds >= 0) H5Dclose(ds);
  if (space >= 0) H5Sclose(space);
  if (rc < 0) return ns_fail(ctx, NS_ERR_IO, "%s: cannot write dataset '%s'", path, name);
  return NS_OK;
}

ns_status ns_hdf5_write(ns_ctx *ctx, const char *path, int n, const char *const *names,
                        const int *ranks, const int64_t *const *shapes, const float *const *datas) {
  H5E_auto2_t old_fn;
  void *old_data;
  H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  ns_status st = NS_OK;
  hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (file < 0) st = ns_fail(ctx, NS_ERR_IO, "cannot create the HDF5 file %s", path);
  for (int i = 0; st == NS_OK && i < n; i++)
    st = write_dataset(ctx, file, path, names[i], ranks[i], shapes[i], datas[i]);
  if (file >= 0 && H5Fclose(file) < 0 && st == NS_OK)
    st = ns_fail(ctx, NS_ERR_IO, "%s: cannot close the HDF5 file", path);
  H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
  return st;
}
