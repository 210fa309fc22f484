# Reference values for carrisk's competing-risks code from R's cmprsk (Gray's test, Fine-Gray crr).
# Usage: Rscript benchmarks/competing_reference.R data.csv   (the CSV from benchmarks/competing_reference.py)
# Prints one JSON object; python -m benchmarks.competing_reference runs this and prints it.
suppressPackageStartupMessages(library(cmprsk))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], stringsAsFactors = FALSE)
ci <- cuminc(d$time, d$cause, group = d$group, cencode = 0)
tests <- ci$Tests
gray <- lapply(rownames(tests), function(k) list(cause = as.integer(k), statistic = unname(tests[k, "stat"]),
                                                 p = unname(tests[k, "pv"]), df = unname(tests[k, "df"])))
cov <- as.matrix(d[, c("high_burden", "age_per_10y", "construct_41bb")])
fg <- lapply(1:2, function(k) {
  fit <- crr(d$time, d$cause, cov, failcode = k, cencode = 0, gtol = 1e-12, maxiter = 100)
  pred <- predict(fit, cov[1:3, , drop = FALSE])  # column 1: failure times; then one CIF column per row
  at <- c(100, 365, 1000)
  cif <- sapply(at, function(t) pred[max(which(pred[, 1] <= t)), -1])  # rows x times
  list(cause = k, coef = unname(fit$coef), se = unname(sqrt(diag(fit$var))), converged = fit$converged,
       cif = cif, at = at)
})
fmt <- function(x) formatC(x, digits = 17, format = "g")
vec <- function(x) paste0("[", paste(fmt(x), collapse = ", "), "]")
cat("{\n  \"cmprsk_version\": \"", as.character(packageVersion("cmprsk")), "\",\n", sep = "")
cat("  \"gray\": [", paste(sapply(gray, function(g) sprintf("{\"cause\": %d, \"statistic\": %s, \"p\": %s, \"df\": %s}",
    g$cause, fmt(g$statistic), fmt(g$p), fmt(g$df))), collapse = ", "), "],\n", sep = "")
cat("  \"crr\": [", paste(sapply(fg, function(f) sprintf("{\"cause\": %d, \"coef\": %s, \"se\": %s, \"at\": %s, \"cif_rows_1_3\": [%s]}",
    f$cause, vec(f$coef), vec(f$se), vec(f$at), paste(apply(f$cif, 1, vec), collapse = ", "))), collapse = ", "), "]\n}\n", sep = "")
