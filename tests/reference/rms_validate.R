# Reference values for carrisk.internal_validation.bootstrap_optimism from R rms::validate.cph.
#
# Run from the repository root:  Rscript tests/reference/rms_validate.R
# Needs R with rms (6.5.0 here) and TH.data. Writes, next to this script:
#   gbsg2.csv               the German Breast Cancer Study Group 2 data (TH.data::GBSG2; 686 patients, 299 events)
#   gbsg2_boot_indices.csv.gz  50 bootstrap index sets (one row each, 1-based), drawn here with set.seed(14)
#   rms_validate.csv        validate.cph's Dxy and calibration slope (index.orig, training, test, optimism,
#                           index.corrected) from the first 10 and from all 50 index sets (column B), once with rms's own Newton-Raphson tolerance (tolerance = "rms")
#                           and once with it tightened to 1e-10 (tolerance = "tight")
# tests/test_reference_r.py replays the same index sets through bootstrap_optimism and compares.
#
# validate.cph draws its resamples with sample(n, replace = TRUE) inside rms:::predab.resample; here that
# function runs in an environment whose `sample` returns the stored index sets in order, so rms's own code does
# every fit and every measure. With tolerance = "tight", rms's coxphFit is also called with eps = 1e-10 and up
# to 100 iterations (rms uses eps = 1e-4, 10 iterations), so that the comparison can be made to 1e-6.
suppressMessages(library(rms))

here <- dirname(normalizePath(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))))
data(GBSG2, package = "TH.data")
gbsg2 <- GBSG2
gbsg2$tgrade <- factor(as.character(gbsg2$tgrade), levels = c("I", "II", "III"))
write.csv(gbsg2, file.path(here, "gbsg2.csv"), row.names = FALSE)

n <- nrow(gbsg2)
B <- 50
set.seed(14)
indices <- t(vapply(seq_len(B), function(b) sample(n, replace = TRUE), integer(n)))
connection <- gzfile(file.path(here, "gbsg2_boot_indices.csv.gz"), "w")
write.table(indices, connection, sep = ",", row.names = FALSE, col.names = FALSE)
close(connection)

validate_with_indices <- function(tight, B) {
  drawn <- 0
  env <- new.env(parent = asNamespace("rms"))
  env$sample <- function(x, size, replace = FALSE, prob = NULL) {
    drawn <<- drawn + 1
    indices[drawn, ]
  }
  if (tight) {
    env$coxphFit <- function(..., iter.max, eps, toler.chol) {
      rms:::coxphFit(..., iter.max = if (iter.max == 0) 0 else 100, eps = 1e-10, toler.chol = 1e-13)
    }
  }
  resample <- rms:::predab.resample
  environment(resample) <- env
  env$predab.resample <- resample
  validate_cph <- rms:::validate.cph
  environment(validate_cph) <- env
  fit <- cph(
    Surv(time, cens) ~ horTh + age + menostat + tsize + tgrade + pnodes + progrec + estrec,
    data = gbsg2, x = TRUE, y = TRUE, method = "efron",
    eps = if (tight) 1e-10 else 1e-4, tol = if (tight) 1e-13 else 1e-9, iter.max = if (tight) 100 else 10
  )
  result <- validate_cph(fit, B = B)
  stopifnot(drawn == B, all(result[, "n"] == B))
  rows <- result[c("Dxy", "Slope"), c("index.orig", "training", "test", "optimism", "index.corrected")]
  data.frame(B = B, tolerance = if (tight) "tight" else "rms", measure = rownames(rows), rows, row.names = NULL)
}

options(warn = 1)
out <- do.call(rbind, lapply(c(10, B), function(b) rbind(validate_with_indices(TRUE, b), validate_with_indices(FALSE, b))))
write.csv(out, file.path(here, "rms_validate.csv"), row.names = FALSE)
print(out, digits = 10)
cat("rms", as.character(packageVersion("rms")), "survival", as.character(packageVersion("survival")), "\n")
