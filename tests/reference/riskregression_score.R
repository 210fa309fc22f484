# Reference values for carrisk.evaluate (time-dependent AUC, Brier score, IPA) from riskRegression::Score.
#
# Run from the repository root after tests/reference/rms_validate.R (which writes gbsg2.csv):
#   Rscript tests/reference/riskregression_score.R
# Needs R with survival, prodlim and riskRegression (2022.11.28 here). Writes, next to this script:
#   gbsg2_predicted_risk.csv   predicted event probabilities of a Cox model fitted to the first 343 patients, for
#                              all 686 patients, at 365.25, 855 and 1095.75 days (855 days is a tie: 2 events and
#                              a censoring fall on it)
#   riskregression_score.csv   Score's AUC, Brier score (model and Kaplan-Meier null model) and IPA at those times
# tests/test_reference_r.py scores the same risks with carrisk.evaluate_model and compares.
suppressMessages({
  library(survival)
  library(prodlim)
  library(riskRegression)
})

here <- dirname(normalizePath(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))))
gbsg2 <- read.csv(file.path(here, "gbsg2.csv"))
times <- c(365.25, 855, 1095.75)

training <- gbsg2[seq_len(nrow(gbsg2) / 2), ]
fit <- coxph(Surv(time, cens) ~ horTh + age + menostat + tsize + tgrade + pnodes + progrec + estrec,
             data = training, x = TRUE)
risk <- predictRisk(fit, newdata = gbsg2, times = times)
colnames(risk) <- paste0("risk_", times)
write.csv(risk, file.path(here, "gbsg2_predicted_risk.csv"), row.names = FALSE)

score <- Score(list(cox = risk), formula = Hist(time, cens) ~ 1, data = gbsg2, times = times,
               metrics = c("auc", "brier"), summary = "ipa", null.model = TRUE, cens.model = "km",
               split.method = "none", conf.int = FALSE)
auc <- as.data.frame(score$AUC$score)
brier <- as.data.frame(score$Brier$score)
out <- data.frame(
  time = times,
  auc = auc$AUC[auc$model == "cox"],
  brier = brier$Brier[brier$model == "cox"],
  brier_null = brier$Brier[brier$model == "Null model"],
  ipa = brier$IPA[brier$model == "cox"]
)
write.csv(out, file.path(here, "riskregression_score.csv"), row.names = FALSE)
print(out, digits = 12)
cat("riskRegression", as.character(packageVersion("riskRegression")), "prodlim", as.character(packageVersion("prodlim")), "\n")
