//! Name pools for the demo firm's people, drawn without repeats.

use std::collections::HashSet;

use crate::rng::Rng;

/// Given names across India's regions.
pub const INDIAN_GIVEN: &[&str] = &[
    "Aarav",
    "Aditi",
    "Akash",
    "Ananya",
    "Anil",
    "Anjali",
    "Arjun",
    "Asha",
    "Bhavna",
    "Deepak",
    "Divya",
    "Gaurav",
    "Harini",
    "Ishaan",
    "Kavya",
    "Karthik",
    "Lakshmi",
    "Manoj",
    "Meera",
    "Mohit",
    "Naveen",
    "Neha",
    "Nikhil",
    "Pooja",
    "Pradeep",
    "Priya",
    "Rahul",
    "Ramesh",
    "Rekha",
    "Rohan",
    "Sanjay",
    "Shreya",
    "Siddharth",
    "Sneha",
    "Suresh",
    "Swati",
    "Tanvi",
    "Varun",
    "Vidya",
    "Vikram",
    "Yash",
    "Zoya",
    "Farhan",
    "Gurpreet",
    "Harpreet",
    "Joseph",
    "Mercy",
    "Nandini",
    "Omkar",
    "Pallavi",
    "Rashmi",
    "Sandeep",
    "Tejas",
    "Uma",
    "Vinay",
    "Aisha",
];

/// Family names across India's regions.
pub const INDIAN_FAMILY: &[&str] = &[
    "Agarwal",
    "Banerjee",
    "Bhat",
    "Chatterjee",
    "Desai",
    "Deshmukh",
    "Gill",
    "Gupta",
    "Hegde",
    "Iyer",
    "Jain",
    "Joshi",
    "Kapoor",
    "Khan",
    "Kulkarni",
    "Kumar",
    "Menon",
    "Mehta",
    "Mishra",
    "Nair",
    "Naidu",
    "Pandey",
    "Patel",
    "Pillai",
    "Rao",
    "Reddy",
    "Sharma",
    "Shetty",
    "Singh",
    "Sinha",
    "Subramanian",
    "Thomas",
    "Verma",
    "Yadav",
    "D'Souza",
    "Fernandes",
    "Ghosh",
    "Malhotra",
    "Chauhan",
    "Srinivasan",
];

/// Given names common in the Philippines.
pub const FILIPINO_GIVEN: &[&str] = &[
    "Angelica",
    "Carlo",
    "Christian",
    "Dianne",
    "Francis",
    "Gabriel",
    "Janine",
    "Jerome",
    "Kristine",
    "Mark",
    "Maricel",
    "Paolo",
    "Rhea",
    "Ramon",
    "Sheila",
    "Teresa",
];

/// Family names common in the Philippines.
pub const FILIPINO_FAMILY: &[&str] = &[
    "Aquino",
    "Bautista",
    "Castillo",
    "Cruz",
    "dela Cruz",
    "Garcia",
    "Mendoza",
    "Navarro",
    "Ramos",
    "Reyes",
    "Santos",
    "Torres",
    "Villanueva",
    "Lim",
];

/// Draws distinct full names from given and family pools.
pub struct NamePool {
    used: HashSet<String>,
}

impl NamePool {
    pub fn new() -> NamePool {
        NamePool {
            used: HashSet::new(),
        }
    }

    /// A name not drawn before; after many misses a middle initial keeps it distinct.
    pub fn draw(&mut self, rng: &mut Rng, given: &[&str], family: &[&str]) -> String {
        for attempt in 0..64 {
            let first = given[rng.below(given.len())];
            let last = family[rng.below(family.len())];
            let name = match attempt < 32 {
                true => format!("{first} {last}"),
                false => {
                    let initial = (b'A' + rng.below(26) as u8) as char;
                    format!("{first} {initial}. {last}")
                }
            };
            if self.used.insert(name.clone()) {
                return name;
            }
        }
        let name = format!("{} {}", given[0], self.used.len());
        self.used.insert(name.clone());
        name
    }
}

impl Default for NamePool {
    fn default() -> NamePool {
        NamePool::new()
    }
}
