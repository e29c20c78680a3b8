//! The 25 service lines a firm offers: the 13 KPO services and 12 BPO transaction types of the
//! industry. Each engagement is for exactly one of them, and each has a pack that defines how
//! its work is done.

use std::fmt;
use std::str::FromStr;

/// Knowledge work or transaction processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// Knowledge process outsourcing: high-value analytical and expert work.
    Kpo,
    /// Business process outsourcing: transaction processing against defined criteria.
    Bpo,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Kpo => "kpo",
            Category::Bpo => "bpo",
        }
    }
}

macro_rules! service_lines {
    ($($variant:ident = $code:literal, $name:literal, $category:ident;)*) => {
        /// One kind of work the firm sells.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum ServiceLine { $($variant),* }

        impl ServiceLine {
            /// Every service line, KPO first, in the order the industry lists them.
            pub const ALL: [ServiceLine; 25] = [$(ServiceLine::$variant),*];

            /// Stable machine name, used in the API, the database and pack files.
            pub fn code(self) -> &'static str {
                match self { $(ServiceLine::$variant => $code),* }
            }

            /// Name as people say it.
            pub fn name(self) -> &'static str {
                match self { $(ServiceLine::$variant => $name),* }
            }

            pub fn category(self) -> Category {
                match self { $(ServiceLine::$variant => Category::$category),* }
            }
        }
    };
}

service_lines! {
    ResearchAndDevelopment = "research_and_development", "Research & Development", Kpo;
    BusinessAndTechnicalAnalysis = "business_and_technical_analysis", "Business and Technical Analysis", Kpo;
    LearningSolutions = "learning_solutions", "Learning Solutions", Kpo;
    AnimationAndDesign = "animation_and_design", "Animation & Design", Kpo;
    BusinessAndMarketResearch = "business_and_market_research", "Business & Market Research", Kpo;
    PharmaAndBiotech = "pharma_and_biotech", "Pharmaceuticals and Biotechnology", Kpo;
    MedicalServices = "medical_services", "Medical Services", Kpo;
    WritingAndContent = "writing_and_content", "Writing & Content Development", Kpo;
    LegalServices = "legal_services", "Legal Services", Kpo;
    IpResearch = "ip_research", "Intellectual Property (IP) Research", Kpo;
    DataAnalytics = "data_analytics", "Data Analytics", Kpo;
    NetworkManagement = "network_management", "Network Management", Kpo;
    TrainingAndConsultancy = "training_and_consultancy", "Training & Consultancy", Kpo;
    CustomerSupport = "customer_support", "Customer Support Services", Bpo;
    TechnicalSupport = "technical_support", "Technical Support Services", Bpo;
    Telemarketing = "telemarketing", "Telemarketing Services", Bpo;
    ItHelpdesk = "it_helpdesk", "Employee IT Help-desk Services", Bpo;
    InsuranceProcessing = "insurance_processing", "Insurance Processing", Bpo;
    DataEntry = "data_entry", "Data Entry / Data Processing Services", Bpo;
    DataConversion = "data_conversion", "Data Conversion Services", Bpo;
    ScanningOcrIndexing = "scanning_ocr_indexing", "Scanning, OCR with Editing & Indexing", Bpo;
    Bookkeeping = "bookkeeping", "Book Keeping and Accounting Services", Bpo;
    FormProcessing = "form_processing", "Form Processing Service", Bpo;
    WebResearch = "web_research", "Internet / Online / Web Research", Bpo;
    ProvidentFundGratuity = "provident_fund_gratuity", "Provident Fund and Gratuity Services", Bpo;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown service line {0:?}; known lines are listed at /api/v1/service-lines")]
pub struct UnknownServiceLine(pub String);

impl FromStr for ServiceLine {
    type Err = UnknownServiceLine;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ServiceLine::ALL
            .into_iter()
            .find(|line| line.code() == text)
            .ok_or_else(|| UnknownServiceLine(text.chars().take(64).collect()))
    }
}

impl fmt::Display for ServiceLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thirteen_kpo_and_twelve_bpo_lines_with_unique_codes() {
        let kpo = ServiceLine::ALL
            .iter()
            .filter(|l| l.category() == Category::Kpo)
            .count();
        assert_eq!((kpo, ServiceLine::ALL.len() - kpo), (13, 12));
        for line in ServiceLine::ALL {
            assert_eq!(line.code().parse::<ServiceLine>(), Ok(line));
        }
        assert!("prior_art".parse::<ServiceLine>().is_err());
    }
}
